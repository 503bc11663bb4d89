#!/usr/bin/env python3
"""Fails when ctest skipped a test for a reason other than missing hardware.

Usage: tools/check-skips.py JUNIT_XML ALLOWED_FILE

JUNIT_XML is ctest's --output-junit report; ALLOWED_FILE holds one regular
expression a line (# comments), searched in a skipped test's output, where the
test says why it skipped (gtest prints it after "Skipped"). A skip whose output
matches none of them, a missing package or data set say, fails: such a test
would otherwise pass CI without running.
"""
import re
import sys
import xml.etree.ElementTree as ElementTree


def allowed_patterns(path):
    with open(path, encoding="utf-8") as lines:
        return [re.compile(line.strip()) for line in lines
                if line.strip() and not line.lstrip().startswith("#")]


def main(junit_path, allowed_path):
    patterns = allowed_patterns(allowed_path)
    tests = ElementTree.parse(junit_path).getroot().iter("testcase")
    allowed, unexpected = [], []
    for test in tests:
        if test.find("skipped") is None:
            continue
        output = test.findtext("system-out") or ""
        reason = next((p.pattern for p in patterns if p.search(output)), None)
        (allowed if reason else unexpected).append((test.get("name"), reason, output))
    for name, reason, _ in allowed:
        print(f"check-skips: {name}: skipped, allowed ({reason})")
    for name, _, output in unexpected:
        tail = "\n    ".join(output.strip().splitlines()[-5:])
        print(f"check-skips: {name}: skipped for a reason other than missing hardware:\n"
              f"    {tail}", file=sys.stderr)
    if unexpected:
        print(f"check-skips: {len(unexpected)} unexpected skip(s); only the reasons in "
              f"{allowed_path} may skip", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
