"""Turns the chart's rendered cloud Deployment into a `podman run` command line, so the container
test runs the image exactly as the Deployment says: env and envFrom (ConfigMap data, Secret keys),
volumeMounts (emptyDir → --tmpfs, the data PVC → a host directory, Secret and ConfigMap items →
files with their modes, read-only), the container securityContext (--user, --read-only,
--cap-drop, no-new-privileges, seccomp), args and the image. Only the listener addresses and the
image name are substituted (the test's free loopback ports, the image it built), nothing else.

  python3 charts/tests/deployment_to_podman.py REQUEST.json > ARGS.json
REQUEST: {"values": {...}, "existing_secrets": {name: {key: value}}, "existing_config_maps":
{name: {key: value}}, "listen": {"VIGIE_LISTEN": "127.0.0.1:P", ...}, "image": "vigie-cloud:test",
"data_dir": "/host/dir", "files_dir": "/host/dir/for/secret/files"}
ARGS: {"flags": [what goes after `podman run`], "image": ..., "args": [the container's args]}.
"""

import base64
import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import test_chart  # noqa: E402  (the one render of the chart)


def tmpfs_size(quantity):
    """A Kubernetes quantity (64Mi) as tmpfs writes it (64m)."""
    for suffix, unit in (("Ki", "k"), ("Mi", "m"), ("Gi", "g")):
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + unit
    return quantity


def main():
    request = json.loads(pathlib.Path(sys.argv[1]).read_text())
    docs = test_chart.render(request["values"])
    (deployment,) = test_chart.of_kind(docs, "Deployment")
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in test_chart.of_kind(docs, "ConfigMap")}
    config_maps.update(request.get("existing_config_maps", {}))
    secrets = {
        d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
        for d in test_chart.of_kind(docs, "Secret")
    }
    secrets.update(request.get("existing_secrets", {}))
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = []

    # env: envFrom first, then env (which wins), as the kubelet does.
    env = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[ref["name"]][ref["key"]]
    for name, address in request.get("listen", {}).items():
        if name not in env:
            raise SystemExit(f"{name} is not in the Deployment's environment")
        env[name] = address
    for name, value in sorted(env.items()):
        args += ["--env", f"{name}={value}"]

    # volumes
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    files_dir = pathlib.Path(request["files_dir"])
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        path = mount["mountPath"]
        if "emptyDir" in volume and path != "/var/lib/vigie":
            size = volume["emptyDir"].get("sizeLimit")
            args += ["--tmpfs", f"{path}:size={tmpfs_size(size)}" if size else path]
        elif "persistentVolumeClaim" in volume or path == "/var/lib/vigie":
            args += ["--volume", f"{request['data_dir']}:{path}"]
        elif "secret" in volume or "configMap" in volume:
            source = volume.get("secret") or volume.get("configMap")
            name = source.get("secretName") or source.get("name")
            data = secrets[name] if "secret" in volume else config_maps[name]
            target = files_dir / mount["name"]
            target.mkdir(parents=True, exist_ok=True)
            mode = source.get("defaultMode", 0o644)
            for item in source.get("items", [{"key": k, "path": k} for k in data]):
                file = target / item["path"]
                file.write_text(data[item["key"]])
                # As the kubelet writes it: root's, in the pod's fsGroup, which may read it.
                fs_group = spec["securityContext"].get("fsGroup")
                os.chown(file, 0, fs_group or 0)
                os.chmod(file, item.get("mode", mode) | (0o040 if fs_group else 0))
            os.chmod(target, 0o755)
            args += ["--volume", f"{target}:{path}:ro" if mount.get("readOnly") else f"{target}:{path}"]
        else:
            raise SystemExit(f"volume {mount['name']}: a kind this script does not know")

    # securityContext (the container's over the pod's)
    sc = dict(spec.get("securityContext", {}))
    sc.update(container.get("securityContext", {}))
    args += ["--user", f"{sc['runAsUser']}:{sc['runAsGroup']}"]
    if "fsGroup" in spec.get("securityContext", {}):
        args += ["--group-add", str(spec["securityContext"]["fsGroup"])]
    if sc.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    for capability in sc.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", capability]
    for capability in sc.get("capabilities", {}).get("add", []):
        args += ["--cap-add", capability]
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if sc.get("seccompProfile", {}).get("type") not in (None, "RuntimeDefault"):
        raise SystemExit("only the runtime's default seccomp profile is known here")

    json.dump({"flags": args, "image": request["image"], "args": container.get("args", [])},
              sys.stdout)


if __name__ == "__main__":
    main()
