"""Counts the tests of a nextest JUnit report per database backend (and in all)."""
import sys
import xml.etree.ElementTree as ET

report = ET.parse(sys.argv[1]).getroot()
counts = {}
for case in report.iter("testcase"):
    name = case.get("name", "")
    backend = "sqlite" if "::sqlite::" in name else "postgres" if "::postgres::" in name else "other"
    failed = case.find("failure") is not None or case.find("error") is not None
    passed, total = counts.get(backend, (0, 0))
    counts[backend] = (passed + (not failed), total + 1)

for backend in ("sqlite", "postgres", "other"):
    passed, total = counts.get(backend, (0, 0))
    label = {"other": "backend-independent"}.get(backend, backend)
    print(f"{label:>20}: {passed}/{total} passed")
if counts.get("sqlite", (0, 0))[1] != counts.get("postgres", (0, 0))[1]:
    print("the SQLite and PostgreSQL halves differ in size", file=sys.stderr)
    sys.exit(1)
sys.exit(0 if all(p == t for p, t in counts.values()) else 1)
