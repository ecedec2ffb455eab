#!/usr/bin/env python3
"""Sum the results of several `meson test` runs into one line.

usage: summarize.py LABEL=PATH/testlog.json [LABEL=PATH ...]

A TAP test (a Criterion suite) counts each `ok` / `not ok` line; if the
runner itself failed although every line said ok (a crash, a timeout, a
non-zero exit), that counts as one more failure, printed with the exit status
and what the runner's stderr says about it (e.g. a test whose worker died
before it started: Criterion leaves it out of the TAP output). Any other test
counts once.
The last line printed is `N passed, N failed`; the exit status is 1 when
anything failed or a log is missing.
"""
import json
import re
import sys

OK_RESULTS = {"OK", "EXPECTEDFAIL"}
SKIP_RESULTS = {"SKIP"}


# What Criterion (with --tap=/dev/stdout its stderr is kept) and
# tests/valgrind-wrap.sh say when a runner fails although every TAP line is
# ok: a worker that died before its test started (the test is left out of
# the TAP output), one that died after it (a warning), killed processes.
REASON_RE = re.compile(r"Warning!|Synthesis:|^valgrind-wrap:|Could not|"
                       r"Runner returned|Process terminating")


def runner_reasons(stderr):
    lines = stderr.splitlines()
    out = []
    for i, line in enumerate(lines):
        if REASON_RE.search(line):
            out.append(line.strip())
            # the names valgrind-wrap.sh lists under "never ran"
            if "never ran" in line:
                j = i + 1
                while j < len(lines) and lines[j].startswith("    "):
                    out.append(lines[j].strip())
                    j += 1
    if not out:
        return "nothing on stderr says why"
    return "\n        " + "\n        ".join(out[:20])


def count(path):
    passed = failed = skipped = 0
    failures = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            out = t.get("stdout") or ""
            result = t.get("result", "")
            if out.startswith("TAP version"):
                p = f = 0
                for tl in out.splitlines():
                    if re.match(r"^ok\b", tl):
                        if "# SKIP" in tl:
                            skipped += 1
                        else:
                            p += 1
                    elif re.match(r"^not ok\b", tl):
                        f += 1
                        failures.append(t["name"] + ": " + tl)
                if f == 0 and result not in OK_RESULTS | SKIP_RESULTS:
                    f += 1
                    failures.append("%s: runner %s (exit status %s) although "
                                    "every TAP line said ok: %s"
                                    % (t["name"], result, t.get("returncode"),
                                       runner_reasons(t.get("stderr") or "")))
                passed += p
                failed += f
            elif result in OK_RESULTS:
                passed += 1
            elif result in SKIP_RESULTS:
                skipped += 1
            else:
                failed += 1
                failures.append("%s: %s" % (t["name"], result))
    return passed, failed, skipped, failures


def main(argv):
    total_p = total_f = 0
    bad = False
    for arg in argv[1:]:
        label, _, path = arg.partition("=")
        try:
            p, f, s, fails = count(path)
        except OSError as e:
            print("%-22s no test log (%s)" % (label, e.strerror))
            total_f += 1
            bad = True
            continue
        print("%-22s %5d passed, %d failed, %d skipped" % (label, p, f, s))
        for x in fails:
            print("    FAILED " + x)
        total_p += p
        total_f += f
    print("%d passed, %d failed" % (total_p, total_f))
    return 1 if (total_f or bad) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
