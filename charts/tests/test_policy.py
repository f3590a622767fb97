"""The rendered chart under a policy scanner: checkov's Kubernetes checks (PyPI `checkov`, in its
own virtual environment: `make chart-test` installs it) over every values file in charts/vigie/ci.
Every failure must be listed in checkov-skips.yaml with a reason, and every entry there must still
fail somewhere (a skip outlives nothing it excused). checkov runs offline (--skip-download), in a
network namespace of its own when the machine allows one, so it sends nothing anywhere.

Run by `make chart-test`: python3 -m unittest discover -s charts/tests
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import test_chart  # noqa: E402  (the one render of the chart)

HERE = pathlib.Path(__file__).resolve().parent
SKIPS = HERE / "checkov-skips.yaml"
CHECKOV = os.environ.get("CHECKOV", str(pathlib.Path.home() / ".cache/vigie-checkov/bin/checkov"))


def scan(directory):
    command = [CHECKOV, "-d", str(directory), "--framework", "kubernetes", "--compact", "--quiet",
               "--skip-download", "-o", "json"]
    offline = ["unshare", "--net", *command]
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    result = subprocess.run(offline if probe.returncode == 0 else command, capture_output=True,
                            text=True, timeout=600)
    if not result.stdout.strip():
        raise AssertionError(f"checkov printed nothing: {result.stderr}")
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


class CheckovOverTheChart(unittest.TestCase):
    def test_every_failed_check_is_a_listed_skip_with_its_reason(self):
        self.assertTrue(shutil.which(CHECKOV) or os.path.exists(CHECKOV),
                        f"{CHECKOV}: make chart-test installs it")
        skips = yaml.safe_load(SKIPS.read_text())
        for check, entry in skips.items():
            self.assertGreater(len(entry.get("reason", "").split()), 8, f"{check}: a reason, in words")
            self.assertTrue(entry.get("resources"), f"{check}: the resources it applies to")
        failed = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, values in test_chart.all_values().items():
                docs = test_chart.render(values)
                pathlib.Path(tmp, name).write_text(yaml.safe_dump_all(docs))
            reports = scan(tmp)
        checked = 0
        for report in reports:
            self.assertEqual(report["summary"]["parsing_errors"], 0, report["summary"])
            checked += report["summary"]["passed"] + report["summary"]["failed"]
            for failure in report["results"]["failed_checks"]:
                kind, _namespace, name = failure["resource"].split(".", 2)
                failed.setdefault(failure["check_id"], set()).add(f"{kind}/{name}")
        self.assertGreater(checked, 500, "checkov ran its Kubernetes checks")
        unexcused = []
        for check, resources in sorted(failed.items()):
            entry = skips.get(check)
            allowed = entry and (entry["resources"] == "*" or resources <= set(entry["resources"]))
            if not allowed:
                listed = set(entry["resources"]) if entry else set()
                unexcused.append(f"{check}: {sorted(resources - listed)}")
        self.assertEqual(unexcused, [], "failed checks not in checkov-skips.yaml")
        stale = [check for check in skips if check not in failed]
        self.assertEqual(stale, [], "skips that no longer fail: remove them")
        for check, entry in skips.items():
            if entry["resources"] != "*":
                unused = set(entry["resources"]) - failed[check]
                self.assertEqual(unused, set(), f"{check}: listed resources that pass")


if __name__ == "__main__":
    unittest.main()
