"""The vigie chart, rendered offline with helm-python-sdk (Helm v4 as a library: no helm binary, no
cluster): every committed values file passes the schema, `lint` strict and `kubernetes-validate
--strict` for the oldest and newest Kubernetes supported; the manifests hold what a real mistake
would break (ports, selectors, the restricted securityContext, no secret in a ConfigMap, settings
the binary accepts); and bad values are refused with a sentence that says why.

Run by `make chart-test` (in `make test`): python3 -m unittest discover -s charts/tests
"""

import base64
import copy
import os
import re
import pathlib
import subprocess
import tempfile
import unittest

import helm_python as helm
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vigie"
CI = CHART / "ci"
# The oldest and the newest Kubernetes the chart supports (Chart.yaml's kubeVersion: >=1.29).
KUBERNETES = ["1.29.0", "1.37.0"]
CLOUD_BIN = ROOT / "target" / "debug" / "vigie-cloud"


def values_of(name):
    return yaml.safe_load((CI / name).read_text()) or {}


# Custom resources: their schemas are their operators' (not Kubernetes'), so kubernetes-validate
# skips them by kind, and TheCustomResources checks what the chart relies on in them.
CUSTOM_KINDS = {
    "ServiceMonitor": "monitoring.coreos.com/v1, the Prometheus Operator's",
    "Certificate": "cert-manager.io/v1, cert-manager's",
}
WORKLOADS = ("Deployment", "StatefulSet", "Pod")


def render_files(values, is_install=True):
    chart = helm.Chart.load(str(CHART))
    chart.validate_schema(values)
    # An upgrade is revision 2 with IsUpgrade (is_install=False alone still renders as an install).
    return chart.render(values, name="vigie", namespace="vigie", is_install=is_install,
                        is_upgrade=not is_install, revision=1 if is_install else 2)


def render(values, is_install=True):
    docs = []
    for path, text in render_files(values, is_install).items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return docs


def notes(values):
    return render_files(values)["vigie/templates/NOTES.txt"]


def all_values():
    return {p.name: values_of(p.name) for p in sorted(CI.glob("*.yaml"))}


def named(docs, kind, name):
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod_spec(doc):
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def pod_labels(doc):
    return doc["metadata"]["labels"] if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]["labels"]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def container_env(docs, container):
    """A container's environment as the kubelet builds it: envFrom, then env (which wins, and may
    name earlier variables as $(NAME)), Secrets decoded; None for a key of a Secret the chart does
    not make (an existingSecret)."""
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in of_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
               for d in of_kind(docs, "Secret")}
    env = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1)) or m.group(0), e["value"])
        elif "secretKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets.get(ref["name"], {}).get(ref["key"])
        else:
            env[e["name"]] = "vigie-7d9f-abcde"  # a fieldRef: the pod's name
    return env


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def containers_of(doc):
    spec = doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else doc["spec"]
    return spec["containers"], spec


class EveryValuesFile(unittest.TestCase):
    """Each committed values file, and every manifest it renders."""

    @classmethod
    def setUpClass(cls):
        cls.rendered = {name: render(values) for name, values in all_values().items()}

    def test_the_four_values_files_are_committed(self):
        for name in ("minimal.yaml", "production.yaml", "evaluation.yaml", "scale.yaml"):
            self.assertIn(name, self.rendered)

    def test_each_passes_the_schema_lint_and_kubernetes_validate(self):
        for name, docs in self.rendered.items():
            with self.subTest(values=name):
                lint = helm.lint(str(CHART), values_of(name), strict=True)
                self.assertEqual(lint["errors"], [], lint)
                bad = [m for m in lint["messages"] if m["severity"] >= 2]
                self.assertEqual(bad, [], lint)
                with tempfile.TemporaryDirectory() as tmp:
                    paths = []
                    for i, doc in enumerate(docs):
                        if doc["kind"] in CUSTOM_KINDS:
                            continue
                        path = os.path.join(tmp, f"{i}-{doc['kind']}.yaml")
                        pathlib.Path(path).write_text(yaml.safe_dump(doc))
                        paths.append(path)
                    for version in KUBERNETES:
                        result = subprocess.run(
                            ["kubernetes-validate", "--strict", "-k", version, *paths],
                            capture_output=True, text=True)
                        self.assertEqual(result.returncode, 0,
                                         f"{name} on Kubernetes {version}:\n{result.stdout}{result.stderr}")

    def test_service_target_ports_exist_and_selectors_match_pods(self):
        for name, docs in self.rendered.items():
            workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
            for service in of_kind(docs, "Service"):
                with self.subTest(values=name, service=service["metadata"]["name"]):
                    selector = service["spec"]["selector"]
                    pods = [w for w in workloads if selects(selector, pod_labels(w))]
                    self.assertEqual(len(pods), 1, f"one workload behind {selector}")
                    ports = {p["name"] for c in pod_spec(pods[0])["containers"] for p in c.get("ports", [])}
                    for port in service["spec"]["ports"]:
                        self.assertIn(port["targetPort"], ports, port)
            for w in workloads:
                self.assertTrue(selects(w["spec"]["selector"]["matchLabels"], pod_labels(w)))
                for c in pod_spec(w)["containers"]:
                    ports = {p["name"] for p in c.get("ports", [])}
                    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                        action = c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket")
                        if action:
                            self.assertIn(action["port"], ports, f"{name} {c['name']} {probe}")

    def test_every_container_is_restricted_pinned_and_mounts_no_token(self):
        for name, docs in self.rendered.items():
            pods = [d for d in docs if d["kind"] in WORKLOADS]
            for doc in pods:
                spec = pod_spec(doc)
                where = f"{name} {doc['metadata']['name']}"
                self.assertIs(spec["automountServiceAccountToken"], False, where)
                self.assertIs(spec["securityContext"]["runAsNonRoot"], True, where)
                self.assertEqual(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
                for c in spec["containers"] + spec.get("initContainers", []):
                    sc = c["securityContext"]
                    self.assertIs(sc["runAsNonRoot"], True, c["name"])
                    self.assertGreater(sc["runAsUser"], 0, c["name"])
                    self.assertIs(sc["readOnlyRootFilesystem"], True, c["name"])
                    self.assertIs(sc["allowPrivilegeEscalation"], False, c["name"])
                    self.assertEqual(sc["capabilities"]["drop"], ["ALL"], c["name"])
                    self.assertNotIn("add", sc["capabilities"], c["name"])
                    self.assertEqual(sc["seccompProfile"]["type"], "RuntimeDefault", c["name"])
                    self.assertFalse(c["image"].endswith(":latest"), c["image"])
                    self.assertRegex(c["image"].rsplit("/", 1)[-1], r":[0-9]", f"{c['image']} has a version tag")
                    self.assertIn("limits", c["resources"], c["name"])
        kinds = {d["metadata"]["name"] for d in self.rendered["evaluation.yaml"] if d["kind"] in WORKLOADS}
        self.assertEqual(kinds, {"vigie", "vigie-mosquitto", "vigie-mediamtx", "vigie-postgresql", "vigie-probe"})

    def test_no_secret_value_is_in_a_config_map(self):
        for name, docs in self.rendered.items():
            for config in of_kind(docs, "ConfigMap"):
                for key, value in config["data"].items():
                    self.assertNotRegex(key, "SECRET|TOKEN|PASSWORD$|ACCESS_KEY", key)
                    if key.startswith("VIGIE_"):
                        self.assertNotIn("@", value, f"{name} {key}: credentials in a URL")
            generated = named(docs, "Secret", "vigie-generated") if any(
                d["metadata"]["name"] == "vigie-generated" for d in of_kind(docs, "Secret")) else None
            if generated:
                config_text = yaml.safe_dump(of_kind(docs, "ConfigMap"))
                for value in generated["data"].values():
                    self.assertNotIn(base64.b64decode(value).decode(), config_text, name)
        # The database URL of a values file that gives it inline lands in a Secret only.
        docs = self.rendered["minimal.yaml"]
        self.assertNotIn("change-me", yaml.safe_dump(of_kind(docs, "ConfigMap")))
        self.assertNotIn("change-me", yaml.safe_dump(of_kind(docs, "Secret")), "base64, never in clear")

    def test_the_binary_accepts_every_setting_the_chart_gives_it(self):
        self.assertTrue(CLOUD_BIN.exists(), f"{CLOUD_BIN}: build it first (make build)")
        for name, docs in self.rendered.items():
            pods = [d for d in docs if d["kind"] in ("Deployment", "Pod")]
            for doc in pods:
                spec = pod_spec(doc)
                for c in spec["containers"] + spec.get("initContainers", []):
                    if not c["image"].startswith(("vigie-cloud:", "registry.example/vigie/vigie-cloud:")):
                        continue
                    with self.subTest(values=name, container=c["name"]):
                        self.check_accepted(docs, c)

    def check_accepted(self, docs, container):
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
        for key, value in container_env(docs, container).items():
            env[key] = value if value is not None else "chart-test-secret-of-some-length-0123"
        # The database is made up (port 1): the command gets past its settings and stops there.
        env["VIGIE_DATABASE_URL"] = "postgres://x@127.0.0.1:1/x"
        args = list(container["args"])
        with tempfile.TemporaryDirectory() as tmp:
            env["VIGIE_DATA_DIR"] = tmp
            for key in ("VIGIE_MQTT_PASSWORD_FILE",):
                if key in env:
                    env[key] = os.path.join(tmp, "password")
                    pathlib.Path(env[key]).write_text("a-password-of-16-chars\n")
            env.pop("VIGIE_MQTT_CA_FILE", None)
            if args[0] == "serve":
                args = ["user", "unlock", "nobody"]
            elif args[0] == "broker-config":
                args = [os.path.join(tmp, "password") if a == "/etc/vigie/mqtt/password" else
                        os.path.join(tmp, "out") if a == "/mosquitto/auth" else a for a in args]
                pathlib.Path(tmp, "password").write_text("a-password-of-16-chars\n")
            elif args[0] == "probe":
                args = ["probe", "http://127.0.0.1:1/readyz", "--timeout-s", "1"]
            result = subprocess.run([str(CLOUD_BIN), *args], env=env, capture_output=True,
                                    text=True, timeout=60)
        self.assertNotIn("is not a setting", result.stderr)
        self.assertNotIn("unexpected argument", result.stderr)
        self.assertNotEqual(result.returncode, 0)
        self.assertRegex(result.stderr.lower(), "database|connect|refused", result.stderr)

    def test_network_policies_select_the_chart_s_pods_and_name_their_ports(self):
        for name, docs in self.rendered.items():
            pods = [d for d in docs if d["kind"] in WORKLOADS]
            policies = of_kind(docs, "NetworkPolicy")
            for pod in pods:
                covered = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], pod_labels(pod))]
                self.assertEqual(len(covered), 1, f"{name} {pod['metadata']['name']}: one policy")
            for policy in policies:
                (target,) = [p for p in pods if selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels(p))]
                ports = {p["name"] for c in pod_spec(target)["containers"] for p in c.get("ports", [])}
                for rule in policy["spec"].get("ingress", []):
                    for port in rule["ports"]:
                        self.assertIn(port["port"], ports, f"{name} {policy['metadata']['name']}")
                    for peer in rule["from"]:
                        if "podSelector" in peer:
                            self.assertTrue(any(selects(peer["podSelector"]["matchLabels"], pod_labels(p))
                                                for p in pods), f"{name}: {peer} selects no pod")
                for rule in policy["spec"].get("egress", []):
                    for peer in rule.get("to", []):
                        if "podSelector" in peer:
                            (dest,) = [p for p in pods if selects(peer["podSelector"]["matchLabels"], pod_labels(p))]
                            dest_ports = {p["containerPort"] for c in pod_spec(dest)["containers"]
                                          for p in c.get("ports", [])}
                            for port in rule["ports"]:
                                self.assertIn(port["port"], dest_ports, f"{name} {policy['metadata']['name']}")

    def test_the_grace_period_covers_the_drain(self):
        for name, docs in self.rendered.items():
            config = named(docs, "ConfigMap", "vigie")
            spec = pod_spec(named(docs, "Deployment", "vigie"))
            self.assertGreater(spec["terminationGracePeriodSeconds"],
                               int(config["data"]["VIGIE_SHUTDOWN_GRACE_S"]), name)


class TheManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = render(values_of("production.yaml"))
        cls.evaluation = render(values_of("evaluation.yaml"))
        cls.scale = render(values_of("scale.yaml"))
        cls.deployment = named(cls.docs, "Deployment", "vigie")
        cls.service = named(cls.docs, "Service", "vigie")
        cls.config = named(cls.docs, "ConfigMap", "vigie")

    def test_the_cloud_is_probed_on_its_health_endpoints(self):
        (cloud,) = pod_spec(self.deployment)["containers"]
        self.assertEqual(cloud["startupProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(cloud["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(cloud["readinessProbe"]["httpGet"]["path"], "/readyz")

    def test_a_change_of_settings_rolls_the_pods_and_a_generated_secret_does_not(self):
        def checksums(values):
            d = named(render(values), "Deployment", "vigie")
            a = d["spec"]["template"]["metadata"]["annotations"]
            return a["checksum/config"], a["checksum/secrets"]
        for values in (values_of("minimal.yaml"), values_of("evaluation.yaml")):
            first, again = checksums(values), checksums(values)
            self.assertEqual(first, again, "secrets generated anew at each render change no checksum")
            changed = copy.deepcopy(values)
            changed.setdefault("cloud", {})["topicPrefix"] = "site-b"
            self.assertNotEqual(checksums(changed)[0], first[0])
        changed = values_of("production.yaml")
        changed["mqtt"]["existingSecret"] = "vigie-mqtt-2"
        self.assertNotEqual(checksums(changed)[1], checksums(values_of("production.yaml"))[1])

    def test_the_streams_get_their_own_ingress_with_long_timeouts_and_no_buffering(self):
        ingresses = {d["metadata"]["name"]: d for d in of_kind(self.docs, "Ingress")}
        self.assertEqual(sorted(ingresses), ["vigie", "vigie-streams"])
        service_ports = {p["name"] for p in self.service["spec"]["ports"]}
        paths = {}
        for name, ingress in ingresses.items():
            self.assertEqual(ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
                             "letsencrypt", name)
            self.assertEqual(ingress["spec"]["tls"][0]["hosts"], ["vigie.example.org"])
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    self.assertEqual(backend["name"], self.service["metadata"]["name"])
                    self.assertIn(backend["port"]["name"], service_ports)
                    paths.setdefault(name, []).append(path["path"])
        self.assertEqual(paths["vigie"], ["/"])
        self.assertEqual(paths["vigie-streams"], ["/api/stream", "/api/cameras"])
        streams = ingresses["vigie-streams"]["metadata"]["annotations"]
        self.assertGreaterEqual(int(streams["nginx.ingress.kubernetes.io/proxy-read-timeout"]), 3600)
        self.assertGreaterEqual(int(streams["nginx.ingress.kubernetes.io/proxy-send-timeout"]), 3600)
        self.assertEqual(streams["nginx.ingress.kubernetes.io/proxy-buffering"], "off")
        self.assertNotIn("nginx.ingress.kubernetes.io/proxy-read-timeout",
                         ingresses["vigie"]["metadata"]["annotations"])

    def test_the_in_chart_mosquitto_runs_the_production_config_with_its_sidecar(self):
        docs = self.evaluation
        config = named(docs, "ConfigMap", "vigie-mosquitto")["data"]["mosquitto.conf"]
        self.assertEqual(config, (CHART / "files" / "mosquitto.conf").read_text())
        broker = named(docs, "Deployment", "vigie-mosquitto")
        spec = pod_spec(broker)
        self.assertIs(spec["shareProcessNamespace"], True)
        containers = {c["name"]: c for c in spec["containers"]}
        (init,) = spec["initContainers"]
        mosquitto, sidecar = containers["mosquitto"], containers["broker-config"]
        mounts = {m["mountPath"]: m for m in mosquitto["volumeMounts"]}
        # Every file the config reads is on a mounted volume; the data directory is writable.
        for path in re.findall(r"^(?:password_file|acl_file|certfile|keyfile|persistence_location) (\S+)",
                               config, re.M):
            mount = [m for m in mounts if path.startswith(m + "/")]
            self.assertEqual(len(mount), 1, path)
        self.assertNotIn("readOnly", mounts["/mosquitto/data"])
        # broker-config writes exactly the files the config names, into the volume Mosquitto reads.
        written = {"devices.passwd", "cloud.passwd", "acl"}
        named_files = {os.path.basename(p) for p in re.findall(r"^(?:password_file|acl_file) (\S+)", config, re.M)}
        self.assertEqual(named_files, written)
        for c in (init, sidecar):
            out = c["args"][c["args"].index("--out") + 1]
            self.assertEqual(out, "/mosquitto/auth")
            volume = [m["name"] for m in c["volumeMounts"] if m["mountPath"] == out]
            self.assertEqual(volume, [mounts["/mosquitto/auth"]["name"]])
            self.assertEqual(c["securityContext"]["runAsUser"], mosquitto["securityContext"]["runAsUser"],
                             "the same user: it may signal the broker and the broker may read its files")
        self.assertNotIn("--watch", init["args"])
        self.assertEqual(sidecar["args"][sidecar["args"].index("--reload-process") + 1],
                         os.path.basename(mosquitto["command"][0]))
        self.assertLessEqual(int(sidecar["args"][sidecar["args"].index("--every-s") + 1]), 30)
        # The TLS Secret's items are the files the config names.
        volumes = {v["name"]: v for v in spec["volumes"]}
        tls = volumes[mounts["/mosquitto/tls"]["name"]]["secret"]
        self.assertEqual({i["path"] for i in tls["items"]}, {"server.pem", "server.key"})
        # The cloud connects to the cloud listener by the Service's name, checking the CA.
        cloud_config = named(docs, "ConfigMap", "vigie")["data"]
        self.assertEqual(cloud_config["VIGIE_MQTT_URL"], "mqtts://vigie-mosquitto:8884")
        certificate = named(docs, "Certificate", "vigie-mosquitto")
        self.assertEqual(certificate["spec"]["secretName"], tls["secretName"])
        self.assertIn("vigie-mosquitto", certificate["spec"]["dnsNames"])
        self.assertIn("vigie.lan", certificate["spec"]["dnsNames"], "the Pis' name of the broker")
        # The Pis reach 8883 only; the cloud's listener stays inside the cluster.
        pis = named(docs, "Service", "vigie-pis-mqtt")
        self.assertEqual([p["port"] for p in pis["spec"]["ports"]], [8883])
        self.assertEqual(pis["spec"]["ports"][0]["nodePort"], 30883)

    def test_mediamtx_asks_the_cloud_and_the_cloud_pulls_from_it(self):
        docs = self.evaluation
        mediamtx = yaml.safe_load(named(docs, "ConfigMap", "vigie-mediamtx")["data"]["mediamtx.yml"])
        self.assertEqual(mediamtx["authMethod"], "http")
        service = named(docs, "Service", "vigie")
        self.assertEqual(mediamtx["authHTTPAddress"],
                         f"http://vigie:{service['spec']['ports'][0]['port']}/api/live/auth")
        self.assertEqual(mediamtx["rtspTransports"], ["tcp"])
        for protocol in ("api", "rtmp", "hls", "webrtc", "srt", "playback"):
            self.assertIs(mediamtx[protocol], False, protocol)
        (cloud,) = pod_spec(named(docs, "Deployment", "vigie"))["containers"]
        env = container_env(docs, cloud)
        url = env["VIGIE_RTSP_SOURCE_URL"]
        self.assertRegex(url, r"^rtsp://vigie-cloud:[A-Za-z0-9]{48}@vigie-mediamtx:8554/live/\{device\}$")
        self.assertNotIn("VIGIE_RTSP_LISTEN", env, "the cloud does not listen for the Pis")
        self.assertEqual(named(docs, "Service", "vigie-pis-rtsp")["spec"]["selector"]["app.kubernetes.io/component"],
                         "mediamtx")

    def test_the_evaluation_database_is_the_cloud_s_and_its_password_generated(self):
        docs = self.evaluation
        (cloud,) = pod_spec(named(docs, "Deployment", "vigie"))["containers"]
        url = container_env(docs, cloud)["VIGIE_DATABASE_URL"]
        database = named(docs, "StatefulSet", "vigie-postgresql")
        (pg,) = pod_spec(database)["containers"]
        password_file = container_env(docs, pg)["POSTGRES_PASSWORD_FILE"]
        (mount,) = [m for m in pg["volumeMounts"] if password_file.startswith(m["mountPath"] + "/")]
        (volume,) = [v for v in pod_spec(database)["volumes"] if v["name"] == mount["name"]]
        (item,) = volume["secret"]["items"]
        self.assertEqual(password_file, f"{mount['mountPath']}/{item['path']}")
        password = base64.b64decode(named(docs, "Secret", volume["secret"]["secretName"])["data"][item["key"]]).decode()
        self.assertEqual(url, f"postgres://vigie:{password}@vigie-postgresql:5432/vigie")
        self.assertEqual(len(password), 48)
        self.assertEqual(database["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"], ["ReadWriteOnce"])

    def test_scale_runs_three_replicas_under_an_hpa_and_a_pdb_and_notes_warn(self):
        docs = self.scale
        deployment = named(docs, "Deployment", "vigie")
        self.assertNotIn("replicas", deployment["spec"], "the HPA owns the count")
        self.assertEqual(deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0)
        hpa = named(docs, "HorizontalPodAutoscaler", "vigie")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], "vigie")
        self.assertEqual(hpa["spec"]["minReplicas"], 3)
        pdb = named(docs, "PodDisruptionBudget", "vigie")
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertTrue(selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(deployment)))
        (cloud,) = pod_spec(deployment)["containers"]
        (client_id,) = [e for e in cloud["env"] if e["name"] == "VIGIE_MQTT_CLIENT_ID"]
        self.assertEqual(client_id["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name")
        self.assertIn("EXPERIMENTAL", notes(values_of("scale.yaml")))
        self.assertNotIn("EXPERIMENTAL", notes(values_of("production.yaml")))
        spread = pod_spec(deployment)["topologySpreadConstraints"][0]
        self.assertTrue(selects(spread["labelSelector"]["matchLabels"], pod_labels(deployment)))

    def test_the_network_policy_lets_the_pis_in_where_they_connect_and_nothing_else(self):
        docs = self.evaluation
        broker = named(docs, "NetworkPolicy", "vigie-mosquitto")["spec"]["ingress"]
        pis = [r for r in broker if r["ports"][0]["port"] == "mqtts"]
        self.assertEqual([p["ipBlock"]["cidr"] for p in pis[0]["from"]], ["0.0.0.0/0", "::/0"])
        cloud_listener = [r for r in broker if r["ports"][0]["port"] == "mqtts-cloud"][0]
        self.assertEqual([list(p) for p in cloud_listener["from"]], [["podSelector"]])
        database = named(docs, "NetworkPolicy", "vigie-postgresql")["spec"]
        self.assertEqual(database["egress"], [])
        production = named(self.docs, "NetworkPolicy", "vigie")["spec"]
        egress_ports = sorted(p["port"] for r in production["egress"] for p in r["ports"])
        self.assertEqual(egress_ports, [53, 53, 443, 5432, 8554, 8884])


class TheCustomResources(unittest.TestCase):
    """What kubernetes-validate cannot check in the operators' kinds, the chart's side of them."""

    def test_the_service_monitor_scrapes_the_metrics_service(self):
        docs = render(values_of("production.yaml"))
        (monitor,) = of_kind(docs, "ServiceMonitor")
        self.assertEqual(monitor["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(monitor["metadata"]["labels"]["release"], "prometheus")
        services = [s for s in of_kind(docs, "Service")
                    if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        self.assertEqual([s["metadata"]["name"] for s in services], ["vigie-metrics"])
        (endpoint,) = monitor["spec"]["endpoints"]
        self.assertIn(endpoint["port"], {p["name"] for p in services[0]["spec"]["ports"]})
        self.assertEqual(endpoint["path"], "/metrics")

    def test_the_certificate_is_cert_manager_s_and_names_its_issuer(self):
        (certificate,) = of_kind(render(values_of("evaluation.yaml")), "Certificate")
        self.assertEqual(certificate["apiVersion"], "cert-manager.io/v1")
        self.assertEqual(certificate["spec"]["issuerRef"], {"name": "vigie-ca", "kind": "Issuer"})


class BadValues(unittest.TestCase):
    def refused(self, values, is_install=True):
        with self.assertRaises(helm.HelmError) as caught:
            render(values, is_install=is_install)
        return str(caught.exception)

    def test_a_nested_typo_is_refused_by_the_schema(self):
        values = values_of("minimal.yaml")
        values["postgresql"]["extrnal"] = {"url": "postgres://x"}
        self.assertIn("additional properties 'extrnal' not allowed", self.refused(values))
        values = values_of("evaluation.yaml")
        values["mosquitto"]["tls"]["certManager"]["issuer"] = "x"
        self.assertIn("additional properties 'issuer' not allowed", self.refused(values))
        values = values_of("minimal.yaml")
        values["image"] = {"tag": "latest"}
        self.assertIn("/image/tag", self.refused(values))

    def test_cross_field_rules_fail_with_a_sentence(self):
        cases = [
            (lambda v: v["mqtt"].pop("existingSecret"),
             "a Secret with the key `password`, the cloud's MQTT password"),
            (lambda v: v["postgresql"]["external"].update(existingSecret="db"),
             "give url or existingSecret, not both"),
            (lambda v: v.pop("postgresql"), "give the database's url, or existingSecret"),
            (lambda v: v["postgresql"].update(evaluation={"enabled": True}),
             "the in-chart evaluation database and an external one are both set"),
            (lambda v: v.update(mosquitto={"enabled": True}, mqtt={}),
             "its listeners are TLS only; give mosquitto.tls.existingSecret"),
            (lambda v: v.update(mosquitto={"enabled": True, "tls": {"existingSecret": "t"}}),
             "mqtt.external.url and mosquitto.enabled are both set"),
            (lambda v: v.update(ingress={"enabled": True}),
             "give ingress.hosts, the names the console answers on"),
            (lambda v: v.update(media={"s3": {"enabled": True, "bucket": "vigie-media"}}),
             "give media.s3.bucket and media.s3.existingSecret"),
            (lambda v: v.update(live={"mode": "external"}), "give live.external.existingSecret"),
            (lambda v: v.update(experimental={"multiReplica": True}, replicaCount=2),
             "the data volume is ReadWriteOnce, one pod only"),
            (lambda v: v.update(experimental={"multiReplica": True}, replicaCount=2,
                                persistence={"enabled": False}),
             "several replicas need media.s3"),
        ]
        for change, sentence in cases:
            with self.subTest(sentence=sentence):
                values = values_of("minimal.yaml")
                change(values)
                self.assertIn(sentence, self.refused(values))

    def test_an_upgrade_that_finds_no_generated_secret_fails_saying_so(self):
        message = self.refused(values_of("minimal.yaml"), is_install=False)
        self.assertIn("finds neither the JWT secret generated at install nor jwt.existingSecret",
                      message)
        values = values_of("minimal.yaml")
        values["jwt"] = {"existingSecret": "vigie-jwt"}
        render(values, is_install=False)
        values = values_of("evaluation.yaml")
        values["jwt"] = {"existingSecret": "vigie-jwt"}
        self.assertIn("cannot find mqtt-password in the Secret vigie-generated",
                      self.refused(values, is_install=False))

    def test_several_replicas_need_the_experimental_flag(self):
        for change in ({"replicaCount": 3}, {"autoscaling": {"enabled": True}}):
            values = values_of("scale.yaml")
            del values["experimental"]
            values.update(change)
            self.assertIn("/experimental/multiReplica", self.refused(values))
        values = values_of("scale.yaml")
        values["live"] = {"mode": "embedded"}
        self.assertIn("a Pi's live stream would reach one replica only", self.refused(values))


if __name__ == "__main__":
    unittest.main()
