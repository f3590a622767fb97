"""The vigie chart, rendered offline with helm-python-sdk (Helm v4 as a library: no helm binary, no
cluster): every committed values file passes the schema, `lint` strict and `kubernetes-validate
--strict` for the oldest and newest Kubernetes supported; the manifests hold what a real mistake
would break (ports, selectors, the restricted securityContext, no secret in a ConfigMap, settings
the binary accepts); and bad values are refused with a sentence that says why.

Run by `make chart-test` (in `make test`): python3 -m unittest discover -s charts/tests
"""

import copy
import os
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


def render(values, is_install=True):
    chart = helm.Chart.load(str(CHART))
    chart.validate_schema(values)
    # An upgrade is revision 2 with IsUpgrade (is_install=False alone still renders as an install).
    out = chart.render(values, name="vigie", namespace="vigie", is_install=is_install,
                       is_upgrade=not is_install, revision=1 if is_install else 2)
    docs = []
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return docs


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def containers_of(doc):
    spec = doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else doc["spec"]
    return spec["containers"], spec


class EveryValuesFile(unittest.TestCase):
    def test_each_passes_the_schema_lint_and_kubernetes_validate(self):
        files = sorted(p.name for p in CI.glob("*.yaml"))
        self.assertIn("minimal.yaml", files)
        self.assertIn("production.yaml", files)
        for name in files:
            with self.subTest(values=name):
                values = values_of(name)
                docs = render(values)
                lint = helm.lint(str(CHART), values, strict=True)
                self.assertEqual(lint["errors"], [], lint)
                bad = [m for m in lint["messages"] if m["severity"] >= 2]
                self.assertEqual(bad, [], lint)
                with tempfile.TemporaryDirectory() as tmp:
                    paths = []
                    for i, doc in enumerate(docs):
                        path = os.path.join(tmp, f"{i}-{doc['kind']}.yaml")
                        pathlib.Path(path).write_text(yaml.safe_dump(doc))
                        paths.append(path)
                    for version in KUBERNETES:
                        result = subprocess.run(
                            ["kubernetes-validate", "--strict", "-k", version, *paths],
                            capture_output=True, text=True)
                        self.assertEqual(result.returncode, 0,
                                         f"{name} on Kubernetes {version}:\n{result.stdout}{result.stderr}")


class TheManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = render(values_of("production.yaml"))
        (cls.deployment,) = of_kind(cls.docs, "Deployment")
        (cls.service,) = of_kind(cls.docs, "Service")
        (cls.config,) = of_kind(cls.docs, "ConfigMap")

    def test_service_ports_name_container_ports_and_selectors_match_the_pods(self):
        (cloud,), _ = containers_of(self.deployment)
        named = {p["name"] for p in cloud["ports"]}
        for port in self.service["spec"]["ports"]:
            self.assertIn(port["targetPort"], named, port)
        pod_labels = self.deployment["spec"]["template"]["metadata"]["labels"]
        for selector in (self.service["spec"]["selector"],
                         self.deployment["spec"]["selector"]["matchLabels"]):
            for key, value in selector.items():
                self.assertEqual(pod_labels.get(key), value, key)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            self.assertIn(cloud[probe]["httpGet"]["port"], named, probe)
        self.assertEqual(cloud["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(cloud["readinessProbe"]["httpGet"]["path"], "/readyz")

    def test_every_container_is_restricted_and_no_token_is_mounted(self):
        pods = of_kind(self.docs, "Deployment") + of_kind(self.docs, "Pod")
        self.assertGreaterEqual(len(pods), 2, "the cloud and the helm test Pod")
        for doc in pods:
            containers, spec = containers_of(doc)
            self.assertIs(spec["automountServiceAccountToken"], False, doc["metadata"]["name"])
            self.assertEqual(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
            for c in containers:
                sc = c["securityContext"]
                self.assertIs(sc["runAsNonRoot"], True, c["name"])
                self.assertIs(sc["readOnlyRootFilesystem"], True, c["name"])
                self.assertIs(sc["allowPrivilegeEscalation"], False, c["name"])
                self.assertEqual(sc["capabilities"]["drop"], ["ALL"], c["name"])
                self.assertNotIn("add", sc["capabilities"], c["name"])
                self.assertFalse(c["image"].endswith(":latest"), c["image"])
                self.assertIn(":", c["image"].rsplit("/", 1)[-1], f"{c['image']} has a tag")

    def test_no_secret_value_is_in_a_config_map(self):
        for key, value in self.config["data"].items():
            self.assertNotRegex(key, "SECRET|TOKEN|PASSWORD$", key)
            self.assertNotIn("@", value, f"{key}: credentials in a URL")
        # The database URL of a values file that gives it inline lands in a Secret only.
        docs = render(values_of("minimal.yaml"))
        (config,) = of_kind(docs, "ConfigMap")
        self.assertNotIn("change-me", yaml.safe_dump(config))
        secrets = yaml.safe_dump(of_kind(docs, "Secret"))
        self.assertNotIn("change-me", secrets, "base64 in the Secret, never in clear")

    def test_the_binary_accepts_every_setting_the_chart_gives_it(self):
        self.assertTrue(CLOUD_BIN.exists(), f"{CLOUD_BIN}: build it first (make build)")
        (cloud,), _ = containers_of(self.deployment)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
        env.update(self.config["data"])
        for e in cloud["env"]:
            env[e["name"]] = "postgres://x@127.0.0.1:1/x" if e["name"] == "VIGIE_DATABASE_URL" \
                else "chart-test-secret-of-some-length-0123"
        with tempfile.TemporaryDirectory() as tmp:
            env["VIGIE_DATA_DIR"] = tmp
            env["VIGIE_MQTT_PASSWORD_FILE"] = os.path.join(tmp, "password")
            pathlib.Path(env["VIGIE_MQTT_PASSWORD_FILE"]).write_text("a-password-of-16-chars\n")
            env.pop("VIGIE_MQTT_CA_FILE", None)
            result = subprocess.run([str(CLOUD_BIN), "user", "unlock", "nobody"],
                                    env=env, capture_output=True, text=True, timeout=60)
        # It gets past its settings (then cannot reach the made-up database).
        self.assertNotIn("is not a setting", result.stderr)
        self.assertIn("database", result.stderr.lower(), result.stderr)

    def test_a_change_of_settings_rolls_the_pods_and_a_generated_secret_does_not(self):
        def checksums(values):
            (d,) = of_kind(render(values), "Deployment")
            a = d["spec"]["template"]["metadata"]["annotations"]
            return a["checksum/config"], a["checksum/secrets"]
        minimal = values_of("minimal.yaml")
        first, again = checksums(minimal), checksums(minimal)
        self.assertEqual(first, again, "the JWT secret generated anew at each render changes no checksum")
        changed = copy.deepcopy(minimal)
        changed.setdefault("cloud", {})["topicPrefix"] = "site-b"
        self.assertNotEqual(checksums(changed)[0], first[0])

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

    def test_the_grace_period_covers_the_drain(self):
        spec = self.deployment["spec"]["template"]["spec"]
        grace = int(self.config["data"]["VIGIE_SHUTDOWN_GRACE_S"])
        self.assertGreater(spec["terminationGracePeriodSeconds"], grace)


class BadValues(unittest.TestCase):
    def refused(self, values, is_install=True):
        with self.assertRaises(helm.HelmError) as caught:
            render(values, is_install=is_install)
        return str(caught.exception)

    def test_a_nested_typo_is_refused_by_the_schema(self):
        values = values_of("minimal.yaml")
        values["postgresql"]["extrnal"] = {"url": "postgres://x"}
        self.assertIn("additional properties 'extrnal' not allowed", self.refused(values))
        values = values_of("minimal.yaml")
        values["image"] = {"tag": "latest"}
        self.assertIn("/image/tag", self.refused(values))

    def test_cross_field_rules_fail_with_a_sentence(self):
        values = values_of("minimal.yaml")
        del values["mqtt"]["external"]["existingSecret"]
        self.assertIn("a Secret with the key `password`, the cloud's MQTT password",
                      self.refused(values))
        values = values_of("minimal.yaml")
        values["postgresql"]["external"]["existingSecret"] = "db"
        self.assertIn("give url or existingSecret, not both", self.refused(values))
        values = values_of("minimal.yaml")
        del values["postgresql"]
        self.assertIn("give the database's url, or existingSecret", self.refused(values))

    def test_an_upgrade_that_finds_no_jwt_secret_fails_saying_so(self):
        message = self.refused(values_of("minimal.yaml"), is_install=False)
        self.assertIn("finds neither the JWT secret generated at install nor jwt.existingSecret",
                      message)
        values = values_of("minimal.yaml")
        values["jwt"] = {"existingSecret": "vigie-jwt"}
        render(values, is_install=False)

    def test_an_ingress_without_hosts_is_refused_with_a_sentence(self):
        values = values_of("minimal.yaml")
        values["ingress"] = {"enabled": True}
        self.assertIn("give ingress.hosts, the names the console answers on", self.refused(values))

    def test_more_than_one_replica_is_refused_for_now(self):
        values = values_of("minimal.yaml")
        values["replicaCount"] = 3
        self.assertIn("/replicaCount", self.refused(values))


if __name__ == "__main__":
    unittest.main()
