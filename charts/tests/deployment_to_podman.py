"""Turns the chart's rendered pods into `podman run` command lines, so the container test runs
the images exactly as the manifests say: env and envFrom (ConfigMap data, Secret keys, $(NAME)
references), volumeMounts (an emptyDir one container uses → --tmpfs; an emptyDir its pod's
containers share, and a PersistentVolumeClaim → a host directory; Secret and ConfigMap items →
files with their modes, read-only), the securityContext (--user, --read-only, --cap-drop,
no-new-privileges, seccomp), args and the image. For the broker it also gives the rendered
mosquitto.conf with its listeners moved to loopback ports and its /mosquitto paths to the host
directories of the same volumes. Only listener addresses, the image name and those paths are
substituted, nothing else.

  python3 charts/tests/deployment_to_podman.py REQUEST.json > ANSWER.json
REQUEST: {"values": {...}, "existing_secrets": {name: {key: value}}, "existing_config_maps":
{name: {key: value}}, "containers": ["vigie/cloud", "vigie-mosquitto/broker-files", ...]
(workload/container), "env": {"vigie/cloud": {"VIGIE_LISTEN": "127.0.0.1:P", ...}} (listener
addresses), "images": {"vigie-cloud:0.1.0": "vigie-cloud:test"}, "volumes_dir": "/host/dir",
"broker_listeners": {"8883": "127.0.0.1:P", "8884": "127.0.0.1:Q"}, "hosts": {"vigie-mosquitto":
"127.0.0.1"} (the Services' names, resolved to loopback)}
ANSWER: {"containers": {"vigie/cloud": {"flags": [after `podman run`], "image": ..., "args": [...],
"probes": [{"probe": "livenessProbe", "path": "/healthz", "port": 8080}, ...]}},
"volumes": {"vigie/data": "/host/dir/vigie/data", ...}, "mosquitto_conf": "..." (with broker_listeners)}
"""

import base64
import json
import os
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import test_chart  # noqa: E402  (the one render of the chart)


def tmpfs_size(quantity):
    """A Kubernetes quantity (64Mi) as tmpfs writes it (64m)."""
    for suffix, unit in (("Ki", "k"), ("Mi", "m"), ("Gi", "g")):
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + unit
    return quantity


class Pods:
    def __init__(self, request):
        self.request = request
        self.docs = test_chart.render(request["values"])
        self.config_maps = {d["metadata"]["name"]: d.get("data", {})
                            for d in test_chart.of_kind(self.docs, "ConfigMap")}
        self.config_maps.update(request.get("existing_config_maps", {}))
        self.secrets = {
            d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
            for d in test_chart.of_kind(self.docs, "Secret")
        }
        self.secrets.update(request.get("existing_secrets", {}))
        self.root = pathlib.Path(request["volumes_dir"])
        self.volumes = {}

    def workload(self, name):
        (doc,) = [d for d in self.docs if d["kind"] in test_chart.WORKLOADS and d["metadata"]["name"] == name]
        return doc

    def container(self, workload, name):
        spec = test_chart.pod_spec(self.workload(workload))
        (c,) = [c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name]
        return spec, c

    def env(self, container, overrides):
        """envFrom first, then env (which wins, and may name earlier variables), as the kubelet does."""
        env = {}
        for source in container.get("envFrom", []):
            env.update(self.config_maps[source["configMapRef"]["name"]])
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), e["value"])
            elif "secretKeyRef" in e["valueFrom"]:
                ref = e["valueFrom"]["secretKeyRef"]
                env[e["name"]] = self.secrets[ref["name"]][ref["key"]]
            else:
                raise SystemExit(f"{e['name']}: a valueFrom this script does not know")
        for name, address in overrides.items():
            if name not in env:
                raise SystemExit(f"{name} is not in the container's environment")
            env[name] = address
        return env

    def host_dir(self, workload, spec, volume):
        """The host directory standing for a pod's volume, owned as the pod's fsGroup makes it."""
        path = self.root / workload / volume
        if not path.exists():
            path.mkdir(parents=True)
            sc = spec.get("securityContext", {})
            os.chown(path, sc.get("runAsUser", 0), sc.get("fsGroup", 0))
            os.chmod(path, 0o2775)
        self.volumes[f"{workload}/{volume}"] = str(path)
        return path

    def projected(self, workload, spec, mount, volume):
        """A Secret's or ConfigMap's items as files, as the kubelet writes them: root's, in the
        pod's fsGroup, which may read them."""
        source = volume.get("secret") or volume.get("configMap")
        name = source.get("secretName") or source.get("name")
        data = self.secrets[name] if "secret" in volume else self.config_maps[name]
        target = self.host_dir(workload, spec, mount["name"])
        mode = source.get("defaultMode", 0o644)
        fs_group = spec.get("securityContext", {}).get("fsGroup")
        for item in source.get("items", [{"key": k, "path": k} for k in data]):
            file = target / item["path"]
            file.write_text(data[item["key"]])
            os.chown(file, 0, fs_group or 0)
            os.chmod(file, item.get("mode", mode) | (0o040 if fs_group else 0))
        os.chown(target, 0, 0)
        os.chmod(target, 0o755)
        return target

    def podman(self, key):
        workload, name = key.split("/")
        spec, container = self.container(workload, name)
        args = []
        env = self.env(container, self.request.get("env", {}).get(key, {}))
        for var, value in sorted(env.items()):
            args += ["--env", f"{var}={value}"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        users = {}
        for c in spec["containers"] + spec.get("initContainers", []):
            for m in c.get("volumeMounts", []):
                users.setdefault(m["name"], set()).add(c["name"])
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            path = mount["mountPath"]
            ro = ":ro" if mount.get("readOnly") else ""
            if "emptyDir" in volume and len(users[mount["name"]]) == 1:
                size = volume["emptyDir"].get("sizeLimit")
                args += ["--tmpfs", f"{path}:size={tmpfs_size(size)}" if size else path]
            elif "emptyDir" in volume or "persistentVolumeClaim" in volume:
                args += ["--volume", f"{self.host_dir(workload, spec, mount['name'])}:{path}{ro}"]
            elif "secret" in volume or "configMap" in volume:
                args += ["--volume", f"{self.projected(workload, spec, mount, volume)}:{path}{ro}"]
            else:
                raise SystemExit(f"volume {mount['name']}: a kind this script does not know")
        sc = dict(spec.get("securityContext", {}))
        sc.pop("fsGroup", None)
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
        for host, address in sorted(self.request.get("hosts", {}).items()):
            args += ["--add-host", f"{host}:{address}"]
        image = self.request.get("images", {}).get(container["image"], container["image"])
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        probes = [{"probe": kind, "path": container[kind]["httpGet"]["path"],
                   "port": ports[container[kind]["httpGet"]["port"]]}
                  for kind in ("startupProbe", "livenessProbe", "readinessProbe")
                  if "httpGet" in container.get(kind, {})]
        return {"flags": args, "image": image, "command": container.get("command", []),
                "args": container.get("args", []), "probes": probes}

    def mosquitto_conf(self):
        """The broker's rendered config, its listeners on loopback and its paths on the host."""
        workload = test_chart.named(self.docs, "Deployment", "vigie-mosquitto")
        spec = test_chart.pod_spec(workload)
        (mosquitto,) = [c for c in spec["containers"] if c["name"] == "mosquitto"]
        conf_path = mosquitto["command"][mosquitto["command"].index("-c") + 1]
        volumes = {v["name"]: v for v in spec["volumes"]}
        text = None
        replacements = []
        for mount in mosquitto["volumeMounts"]:
            volume = volumes[mount["name"]]
            if conf_path.startswith(mount["mountPath"] + "/"):
                name = volume["configMap"]["name"]
                text = self.config_maps[name][os.path.basename(conf_path)]
            elif "secret" in volume:
                host = self.projected("vigie-mosquitto", spec, mount, volume)
                replacements.append((mount["mountPath"] + "/", f"{host}/"))
            else:
                host = self.host_dir("vigie-mosquitto", spec, mount["name"])
                replacements.append((mount["mountPath"] + "/", f"{host}/"))
        for port, address in self.request["broker_listeners"].items():
            host, _, bind = address.rpartition(":")
            text, n = re.subn(rf"^listener {port}$", f"listener {bind} {host}", text, flags=re.M)
            if n != 1:
                raise SystemExit(f"no `listener {port}` line in the rendered mosquitto.conf")
        for old, new in replacements:
            text = text.replace(old, new)
        if any("/mosquitto/" in line for line in text.splitlines() if not line.startswith("#")):
            raise SystemExit("a /mosquitto/ path of the config is on no mounted volume")
        return text


def main():
    request = json.loads(pathlib.Path(sys.argv[1]).read_text())
    pods = Pods(request)
    answer = {"containers": {key: pods.podman(key) for key in request["containers"]}}
    if "broker_listeners" in request:
        answer["mosquitto_conf"] = pods.mosquitto_conf()
    answer["volumes"] = pods.volumes
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
