"""JUnit XML for CI systems: one testcase per rule verdict, failures and errors as JUnit renders them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from vtool.checks.rules import ERROR, FAIL

SUITE = "vtool validate"
# (classname: the file, name: check rule column, status, message)
Case = tuple[str, str, str, str]


def junit(cases: Sequence[Case], label: str) -> bytes:
    """Encode verdicts as one <testsuite> in a <testsuites> document."""
    failures = sum(1 for c in cases if c[2] == FAIL)
    errors = sum(1 for c in cases if c[2] == ERROR)
    root = ET.Element("testsuites", name=SUITE, tests=str(len(cases)), failures=str(failures), errors=str(errors))
    suite = ET.SubElement(root, "testsuite", name=f"{SUITE} ({label})", tests=str(len(cases)),
                          failures=str(failures), errors=str(errors))
    for classname, name, status, message in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name)
        if status in (FAIL, ERROR):
            tag = "failure" if status == FAIL else "error"
            ET.SubElement(case, tag, message=message, type=name.split(" ")[-1]).text = message
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
