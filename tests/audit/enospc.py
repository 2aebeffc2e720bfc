#!/usr/bin/env python3
"""Out of space on a real file system: a run, an analysis and an evaluation
writing into a tmpfs that is full.

Each case mounts a small tmpfs in a private mount namespace (`unshare -rm`,
no root needed where user namespaces are allowed), fills it so that only a
few KiB remain, runs one lorascope command writing into it and checks: a
non-zero exit, one error line saying "No space left on device" and naming
the file, and no temporary files (*.tmp.*) or partial outputs left behind.
Exits 77 (skipped) where no private tmpfs can be mounted.

usage: enospc.py LORASCOPE_BIN
"""
import os
import shutil
import subprocess
import sys
import tempfile

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLAMA_BASE = os.path.join(TESTS, "data/peft/llama_tiny/base")
LLAMA_ADAPTER = os.path.join(TESTS, "data/peft/llama_tiny/adapter")

# Inside the namespace: mount, fill to leave $FREE KiB, run, then list what
# the command left in the output path (the mount vanishes with the namespace).
SCRIPT = r'''
set -u
mnt=$1; free_kib=$2; out=$3; shift 3
mount -t tmpfs -o size=1024k tmpfs "$mnt" || exit 77
dd if=/dev/zero of="$mnt/filler" bs=1k count=$((1024 - free_kib)) 2>/dev/null
"$@" >/dev/null 2>"$mnt/../stderr.txt"
echo "rc=$?"
find "$mnt" -path "$mnt/filler" -prune -o -type f -print | sed "s|^$mnt/|left: |"
'''


def run_case(exe, name, free_kib, out_rel, args):
    """Returns a list of failures (empty: the case passed), None where no tmpfs can be mounted."""
    work = tempfile.mkdtemp(prefix="ls_enospc_")
    try:
        return check_case(exe, name, free_kib, out_rel, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_case(exe, name, free_kib, out_rel, args, work):
    mnt = os.path.join(work, "fs")
    os.mkdir(mnt)
    argv = [a.replace("{M}", mnt) for a in args]
    r = subprocess.run(["unshare", "-rm", "sh", "-c", SCRIPT, "sh", mnt, str(free_kib), out_rel or "-", exe] + argv,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    if r.returncode == 77 or "rc=" not in r.stdout:
        return None
    rc = int(r.stdout.split("rc=")[1].split()[0])
    left = [l[6:] for l in r.stdout.splitlines() if l.startswith("left: ")]
    err = open(os.path.join(work, "stderr.txt")).read().strip().splitlines()
    last = err[-1] if err else ""
    fails = []
    if rc == 0:
        fails.append("exit 0 on a full disk")
    if "No space left on device" not in last:
        fails.append("the error does not say 'No space left on device': %r" % last)
    if not last.startswith("lorascope") or sum(l.startswith("lorascope") for l in err) != 1:
        fails.append("expected one error line, got: %r" % err)
    tmp = [f for f in left if ".tmp." in f]
    if tmp:
        fails.append("temporary files left: %s" % tmp)
    if out_rel and any(f.startswith(out_rel + "/") and not f.endswith(".lock") for f in left):
        partial = [f for f in left if f.startswith(out_rel + "/")]
        fails.append("partial output left in %s: %s" % (out_rel, partial))
    print("%-40s rc=%d  %s" % (name, rc, last))
    return fails


def main():
    exe = os.path.abspath(sys.argv[1])
    data_dir = tempfile.mkdtemp(prefix="ls_enospc_data_")
    try:
        return run_cases(exe, os.path.join(data_dir, "d.txt"))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run_cases(exe, data):
    with open(data, "w") as f:
        f.write("Once upon a time there was a lighthouse keeper who loved the sea.\n" * 40)
    train = ["train", "--model", LLAMA_BASE, "--tokenizer", "bytes", "--task", "lm", "--data", data,
             "--steps", "2", "--batch-size", "2", "--seq-len", "16"]
    cases = [
        # the run directory's config.ini and metrics fit, the checkpoint (768 KiB) does not
        ("train: checkpoint on a full disk", 64, None, train + ["--rank", "32", "--lora", "all", "--out", "{M}/run"]),
        # not even config.ini fits
        ("train: config.ini on a full disk", 0, None, train + ["--out", "{M}/run"]),
        ("analyze: tables and figures", 0, "out",
         ["analyze", "spectrum", "--adapter", LLAMA_ADAPTER, "--out", "{M}/out"]),
        # the tables (about 40 KiB in 4 KiB blocks) fit, the figures do not
        ("analyze: figures on a full disk", 36, "out",
         ["analyze", "spectrum", "--adapter", LLAMA_ADAPTER, "--out", "{M}/out"]),
        ("eval: --out JSON", 0, None,
         ["eval", "--model", LLAMA_BASE, "--tokenizer", "bytes", "--task", "lm", "--data", data,
          "--seq-len", "16", "--out", "{M}/eval.json"]),
        # the run fits, the merged model (431 KiB) does not
        ("train: --merged-out checkpoint", 200, None,
         train + ["--rank", "1", "--out", "{M}/run", "--merged-out", "{M}/merged"]),
    ]
    failures, ran = [], 0
    for name, free_kib, out_rel, args in cases:
        res = run_case(exe, name, free_kib, out_rel, args)
        if res is None:
            print("enospc: cannot mount a private tmpfs here (unshare -rm + mount): skipped")
            return 77
        ran += 1
        failures += ["%s: %s" % (name, f) for f in res]
    for f in failures:
        print("FAIL: " + f)
    print("%d cases, %d failures" % (ran, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
