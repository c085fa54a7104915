#!/usr/bin/env python3
"""make bench: sealbox against the tools people would use instead (issue 6).

    bench.py --bin BUILD --img DIR --reads DIR --tiny DIR --work DIR --out DIR
             [--runs N] [--quick]

BUILD holds sealbox, sealbox-verify, sealbox-open and sealbox-gpiosim; the
data is what tests/bench/gen_bench made: --img a reads.csv with images/,
--reads a reads-only reads.csv, --tiny a ~1 KB reads.csv.  Everything runs on this machine, on a
fresh swtpm (tests/lib/swtpm.sh) and the GPIO simulator, the way
tests/cli/release.sh drives the real appliance.

Each contender runs --runs times; the runs are interleaved (round r runs every
contender once, starting one further along the list each round), so a burst of
load from another process on this shared machine hits all of them rather than
one.  Every run is wrapped in /usr/bin/time -v (peak RSS of the largest single
process of the run, user and system CPU); wall time is taken here around the
whole command; the load average is recorded before each run.  Outputs are
deleted and the file system synced after each run, outside the timing, so one
contender's write-back does not land in the next one's time.

The TPM commands per sealbox operation are counted at the TCTI: one extra,
untimed run of each operation goes through the tpm2-tss `pcap` TCTI
(pcap:swtpm:...) and tests/bench/tpmcount.py counts the commands in the
capture.

Writes DIR/results.json and DIR/results.md (--out).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TPMCOUNT = os.path.join(TOP, "tests", "bench", "tpmcount.py")
MB = 1e6
RSS_LIMIT_KB = 64 * 1024


def log(msg):
    print("bench: " + msg, flush=True)


def sh(cmd, env=None, check=True, capture=True, timeout=1800):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, timeout=timeout,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (
            r.returncode, cmd if isinstance(cmd, str) else " ".join(map(shlex.quote, cmd)),
            r.stdout or "", r.stderr or ""))
    return r


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def tree_bytes(path):
    n = 0
    for root, _, files in os.walk(path):
        for f in files:
            n += os.path.getsize(os.path.join(root, f))
    return n


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, timeout=20).stdout
        return out.strip().splitlines()[0] if out.strip() else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "absent"


def machine(work):
    info = {"kernel": platform.release(), "python": platform.python_version()}
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k = k.strip()
            if k == "model name" and "cpu_model" not in info:
                info["cpu_model"] = v.strip()
            elif k == "flags" and not flags:
                flags = set(v.split())
    lscpu = sh(["lscpu"], check=False).stdout or ""
    for key, name in (("Model name", "lscpu_model"), ("CPU family", "cpu_family"),
                      ("Model", "cpu_model_number"), ("Hypervisor vendor", "hypervisor"),
                      ("L2 cache", "l2"), ("L3 cache", "l3")):
        m = re.search(r"^%s:\s*(.+)$" % re.escape(key), lscpu, re.M)
        if m:
            info[name] = m.group(1).strip()
    info["cores"] = os.cpu_count()
    info["crypto_flags"] = {f: f in flags for f in ("sha_ni", "aes", "vaes", "pclmulqdq",
                                                     "vpclmulqdq", "avx2", "avx512f")}
    with open("/proc/meminfo") as f:
        m = re.search(r"MemTotal:\s+(\d+) kB", f.read())
        info["memory_gib"] = round(int(m.group(1)) / 1048576, 1) if m else None
    df = sh(["df", "-T", work], check=False).stdout.splitlines()
    if len(df) > 1:
        p = df[1].split()
        info["work_fs"] = "%s on %s" % (p[1], p[0])
    info["tools"] = {
        "openssl": tool_version(["openssl", "version"]),
        "gpg": tool_version(["gpg", "--version"]),
        "age": tool_version(["age", "--version"]),
        "tar": tool_version(["tar", "--version"]),
        "swtpm": tool_version(["swtpm", "--version"]),
    }
    info["load_at_start"] = loadavg()
    head = sh(["git", "-C", TOP, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
    dirty = sh(["git", "-C", TOP, "status", "--porcelain", "--untracked-files=no"],
               check=False).stdout.strip()
    info["sealbox_tree"] = "%s%s" % (head or "?", " + uncommitted changes" if dirty else "")
    return info


class TimeV:
    """Parses /usr/bin/time -v output (written to its own file with -o)."""

    @staticmethod
    def parse(path):
        out = {}
        with open(path) as f:
            for line in f:
                k, _, v = line.strip().rpartition(": ")
                if k == "Maximum resident set size (kbytes)":
                    out["rss_kb"] = int(v)
                elif k == "User time (seconds)":
                    out["user_s"] = float(v)
                elif k == "System time (seconds)":
                    out["sys_s"] = float(v)
                elif k == "Exit status":
                    out["exit"] = int(v)
        return out


class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = os.path.abspath(a.bin)
        self.img = os.path.abspath(a.img)
        self.reads_csv = os.path.join(os.path.abspath(a.reads), "reads.csv")
        self.tiny_csv = os.path.join(os.path.abspath(a.tiny), "reads.csv")
        self.work = os.path.abspath(a.work)
        self.out = os.path.abspath(a.out)
        self.env = dict(os.environ)
        self.env["TSS2_LOG"] = "all+none"
        self.env["LC_ALL"] = "C"
        self.sim = None
        self.tpm = os.path.join(self.work, "tpm")
        self.sock = os.path.join(self.work, "gpio.sock")
        self.seq = 0
        self.results = {}
        self.tpm_counts = {}
        self.gnupg = None

    # --- the appliance -----------------------------------------------------
    def p(self, name):
        return os.path.join(self.bin, name)

    def sb(self, *args, **kw):
        return sh([self.p("sealbox")] + list(args), env=self.env, **kw)

    def start(self):
        if os.path.exists(self.work):
            self.stop_tpm()
            shutil.rmtree(self.work)
        os.makedirs(self.work)
        r = sh(["bash", "-c", '. "$0/tests/lib/swtpm.sh" && swtpm_start "$1" >&2 && '
                'printf "%s\\n%s\\n" "$SEALBOX_TCTI" "$SBX_TEST_EKCA"', TOP, self.tpm],
               env=self.env)
        tcti, ekca = r.stdout.split("\n")[:2]
        self.env["SEALBOX_TCTI"] = tcti
        self.ekca = ekca
        self.env["SEALBOX_STATE"] = os.path.join(self.work, "state")
        self.sim = subprocess.Popen([self.p("sealbox-gpiosim"), "serve", self.sock, "--quiet"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        self.env["SEALBOX_GPIO"] = "sim:" + self.sock
        self.sb("init", "--operator", "bench.installer")
        self.pki()
        self.sb("trust", "add", "--role", "prosecutor", self.f("pki/ca.pem"), "--operator", "bench.admin")
        self.sb("recipient", "add", "pros", self.f("pki/p.pem"), "--role", "prosecutor",
                "--attestation", "ATT-BENCH-1", "--operator", "bench.admin")
        self.sb("identity", "--out", self.f("identity.sbxi"))

    def stop_tpm(self):
        sh(["bash", "-c", '. "$0/tests/lib/swtpm.sh" && swtpm_stop "$1"', TOP, self.tpm],
           env=self.env, check=False)

    def stop(self):
        if self.sim is not None:
            self.sim.terminate()
            self.sim.wait()
            self.sim = None
        self.stop_tpm()
        if self.gnupg is not None:
            sh(["gpgconf", "--kill", "gpg-agent"], env=dict(self.env, GNUPGHOME=self.gnupg),
               check=False)
            shutil.rmtree(self.gnupg, ignore_errors=True)
            self.gnupg = None

    def f(self, rel):
        return os.path.join(self.work, rel)

    def pki(self):
        d = self.f("pki")
        os.makedirs(d)
        cmds = [
            "openssl ecparam -name prime256v1 -genkey -noout -out ca.key",
            "openssl req -x509 -new -key ca.key -subj '/O=Denver District Court/CN=Bench Recipient CA'"
            " -days 3650 -addext basicConstraints=critical,CA:TRUE"
            " -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem",
            "openssl ecparam -name prime256v1 -genkey -noout -out p.key",
            "openssl req -new -key p.key -subj '/O=Denver District Attorney/CN=Bench Prosecutor' -out p.csr",
            "printf 'basicConstraints=CA:FALSE\\nkeyUsage=critical,keyAgreement,digitalSignature\\n' > ext.cnf",
            "openssl x509 -req -in p.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365"
            " -extfile ext.cnf -out p.pem",
        ]
        for c in cmds:
            sh("cd %s && %s" % (shlex.quote(d), c), env=self.env)

    def peers_setup(self):
        # Outside the build tree (the Makefile -includes every *.d under
        # BUILD, and gpg makes private-keys-v1.d), and short, for the
        # agent's socket path.
        g = tempfile.mkdtemp(prefix="sbx-bench-gnupg.")
        self.gnupg = g
        genv = dict(self.env, GNUPGHOME=g)
        # ed25519 signing + cv25519 encryption: gpg 2.2's "future-default",
        # its fastest public-key algorithms; the bulk cipher is AES-256 by the
        # key's preferences.
        sh(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
            "--quick-gen-key", "Bench Prosecutor <bench@example.org>", "future-default",
            "default", "never"], env=genv)
        out = sh(["gpg", "--batch", "--with-colons", "--list-keys"], env=genv).stdout
        self.gpg_fpr = re.search(r"^fpr:+([0-9A-F]{40}):", out, re.M).group(1)
        self.genv = genv
        sh(["age-keygen", "-o", self.f("age.key")], env=self.env)
        self.age_pub = sh(["age-keygen", "-y", self.f("age.key")], env=self.env).stdout.strip()

    # --- running one measured command ---------------------------------------
    def measure(self, name, cmd, env=None, button=False, timeout=1800):
        """Runs cmd (a shell string) under /usr/bin/time -v; returns the run's
        numbers.  With button=True presses the simulated button once the amber
        LED blinks, as a technician would, and times the parts separately."""
        self.seq += 1
        tv = self.f("time.%d" % self.seq)
        load = loadavg()
        argv = ["/usr/bin/time", "-v", "-o", tv, "bash", "-o", "pipefail", "-c", cmd]
        marks = {}
        presser = None
        if button:
            def press():
                w = subprocess.run([self.p("sealbox-gpiosim"), "wait-led", self.sock, "amber=blink",
                                    "--timeout-ms", "120000"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                marks["blink"] = time.perf_counter()
                if w.returncode != 0:
                    return
                subprocess.run([self.p("sealbox-gpiosim"), "press", self.sock, "--hold-ms", "50"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                marks["pressed"] = time.perf_counter()
            presser = threading.Thread(target=press)
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env or self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if presser:
            presser.start()
        try:
            so, se = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            so, se = proc.communicate()
            raise RuntimeError("%s: timed out after %d s" % (name, timeout))
        t1 = time.perf_counter()
        if presser:
            presser.join()
        if proc.returncode != 0:
            raise RuntimeError("%s failed (exit %d): %s\n%s%s" % (name, proc.returncode, cmd,
                                                                so[-2000:], se[-2000:]))
        run = {"wall_s": t1 - t0, "load1": load[0]}
        run.update(TimeV.parse(tv))
        os.unlink(tv)
        if button:
            if "pressed" not in marks:
                raise RuntimeError("%s: the amber LED never blinked" % name)
            run["before_button_s"] = marks["blink"] - t0
            run["human_wait_s"] = marks["pressed"] - marks["blink"]
            run["after_press_s"] = t1 - marks["pressed"]
            run["box_s"] = run["before_button_s"] + run["after_press_s"]
        run["stdout_tail"] = so[-400:]
        return run

    # --- the contenders -------------------------------------------------------
    def contenders(self):
        q = shlex.quote
        img = self.img
        reads_csv = self.reads_csv
        tar_img = "tar cf - -C %s ." % q(img)
        sb = q(self.p("sealbox"))
        C = []

        def add(key, group, label, cmd, nbytes, pre=None, post=None, button=False, runs=None,
                env=None, speed=None):
            C.append(dict(key=key, group=group, label=label, cmd=cmd, bytes=nbytes, pre=pre,
                          post=post, button=button, runs=runs, env=env, speed=speed))

        data_bytes = self.img_bytes
        out = self.f("out")

        def rm_out():
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            sh(["sync", "-f", self.work], check=False)

        # Sealing: each run opens a fresh hold, seals into it, and the
        # hold is closed (purged) afterwards, outside the timing.
        def hold_open(case):
            def f():
                rm_out()
                self.sb("hold", "open", case(), "--authority", "Bench warrant",
                        "--purpose", "criminal-investigation", "--operator", "bench.tech")
            return f

        def hold_close(case):
            def f():
                self.sb("hold", "close", case(), "--operator", "bench.tech")
                rm_out()
            return f

        cur = {}

        def case_for(prefix):
            def name():
                return cur.setdefault(prefix, "%s-%d" % (prefix, self.seq))
            return name

        def fresh(prefix, inner):
            def f():
                cur.pop(prefix, None)
                inner()
            return f

        seal_case = case_for("BENCH-SEAL")
        add("seal.sealbox", "seal", "sealbox ingest + seal (fsync)",
            lambda: "%s ingest %s %s --operator bench.tech --json" % (sb, q(seal_case()),
                                                                     q(os.path.join(img, "reads.csv"))),
            data_bytes, pre=fresh("BENCH-SEAL", hold_open(seal_case)), post=hold_close(seal_case))
        add("seal.gpg", "seal", "tar c | gpg -e -s --compress-algo none",
            "%s | gpg --batch --yes --encrypt --sign --compress-algo none -r %s -u %s -o %s"
            % (tar_img, self.gpg_fpr, self.gpg_fpr, q(os.path.join(out, "x.gpg"))),
            data_bytes, pre=rm_out, post=rm_out, env=self.genv)
        add("seal.age", "seal", "tar c | age -r",
            "%s | age -r %s -o %s" % (tar_img, self.age_pub, q(os.path.join(out, "x.age"))),
            data_bytes, pre=rm_out, post=rm_out)
        add("seal.age_fsync", "seal", "tar c | age -r, then fsync (sync FILE)",
            "%s | age -r %s -o %s && sync %s" % (tar_img, self.age_pub, q(os.path.join(out, "x.age")),
                                                 q(os.path.join(out, "x.age"))),
            data_bytes, pre=rm_out, post=rm_out)
        add("seal.cms", "seal", "tar c | openssl cms -encrypt -stream -aes-256-gcm (EC P-256)",
            "%s | openssl cms -encrypt -stream -aes-256-gcm -binary -outform DER -recip %s -out %s"
            % (tar_img, q(self.f("pki/p.pem")), q(os.path.join(out, "x.p7m"))),
            data_bytes, pre=rm_out, post=rm_out)
        # GNU tar does not read the files when the archive is /dev/null, so
        # the baseline pipes through cat.
        add("base.tar", "seal", "baseline: tar c | cat > /dev/null", "%s | cat > /dev/null" % tar_img,
            data_bytes)
        add("base.dgst_files", "seal", "baseline: openssl dgst -sha256 of every file",
            "find %s -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null" % q(img), data_bytes)

        # Verifying the released 1 GB bundle (auditor: no keys).
        big = self.big_release
        add("verify.sealbox", "verify", "sealbox-verify (bundle + identity + EK chain + log)",
            "%s %s --identity %s --ek-ca %s --log %s --quiet" % (
                q(self.p("sealbox-verify")), q(big), q(self.f("identity.sbxi")), q(self.ekca),
                q(self.f("log.sbxl"))),
            os.path.getsize(big))
        add("base.dgst_bundle", "verify", "baseline: openssl dgst -sha256 of the bundle",
            "openssl dgst -sha256 %s > /dev/null" % q(big), os.path.getsize(big))

        # Opening: decrypt, verify, extract.
        add("open.sealbox", "open", "sealbox-open (verify, decrypt, extract)",
            "%s %s --key %s --cert %s --out %s --quiet" % (
                q(self.p("sealbox-open")), q(big), q(self.f("pki/p.key")), q(self.f("pki/p.pem")),
                q(os.path.join(out, "opened"))),
            data_bytes, pre=rm_out, post=rm_out)
        add("open.gpg", "open", "gpg -d | tar x",
            "mkdir %s && gpg --batch -d %s 2>/dev/null | tar xf - -C %s" % (
                q(os.path.join(out, "x")), q(self.f("ref/x.gpg")), q(os.path.join(out, "x"))),
            data_bytes, pre=rm_out, post=rm_out, env=self.genv)
        add("open.age", "open", "age -d | tar x",
            "mkdir %s && age -d -i %s %s | tar xf - -C %s" % (
                q(os.path.join(out, "x")), q(self.f("age.key")), q(self.f("ref/x.age")),
                q(os.path.join(out, "x"))),
            data_bytes, pre=rm_out, post=rm_out)
        add("base.tarx", "open", "baseline: tar x of a plain tar",
            "mkdir %s && tar xf %s -C %s" % (q(os.path.join(out, "x")), q(self.f("ref/x.tar")),
                                             q(os.path.join(out, "x"))),
            data_bytes, pre=rm_out, post=rm_out)
        if self.a.cms_decrypt:
            add("open.cms", "open", "openssl cms -decrypt | tar x (whole input in memory)",
                "mkdir %s && openssl cms -decrypt -binary -inform DER -in %s -recip %s -inkey %s"
                " | tar xf - -C %s" % (q(os.path.join(out, "x")), q(self.f("ref/x.p7m")),
                                        q(self.f("pki/p.pem")), q(self.f("pki/p.key")),
                                        q(os.path.join(out, "x"))),
                data_bytes, pre=rm_out, post=rm_out, runs=1)

        # Releasing: re-wrap the key, write the release, copy the bundle out.
        for key, case, nbytes in (("release.small", "REL-SMALL", self.small_bundle_bytes),
                                  ("release.big", "REL-BIG", os.path.getsize(big))):
            add(key, "release", "sealbox release of the %s bundle (button pressed by the script)"
                % ("1 KB" if key == "release.small" else "1 GB"),
                "%s release %s --to pros --purpose prosecution --authority 'Bench order'"
                " --operator bench.tech --out %s --timeout 120" % (sb, case, q(os.path.join(out, "rel"))),
                nbytes, pre=rm_out, post=rm_out, button=True)

        # 1,000,000 reads without images.
        reads_case = case_for("BENCH-READS")
        add("reads.sealbox", "reads", "sealbox ingest + seal of the reads-only CSV",
            lambda: "%s ingest %s %s --operator bench.tech --json" % (sb, q(reads_case()), q(reads_csv)),
            self.reads_bytes, pre=fresh("BENCH-READS", hold_open(reads_case)),
            post=hold_close(reads_case))
        add("reads.age", "reads", "age -r of the reads-only CSV",
            "age -r %s -o %s %s" % (self.age_pub, q(os.path.join(out, "r.age")), q(reads_csv)),
            self.reads_bytes, pre=rm_out, post=rm_out)

        # The physical limit: one core's SHA-256 and AES-256-GCM.
        for alg in ("sha256", "aes-256-gcm"):
            add("speed." + alg, "limit", "openssl speed -evp %s (16 KiB blocks, one core)" % alg,
                "openssl speed -mr -evp %s -bytes 16384 -seconds %d 2>/dev/null" % (
                    alg, 1 if self.a.quick else 2),
                None, speed=alg)
        return C

    # --- setup of the reference objects ---------------------------------------
    def setup(self):
        q = shlex.quote
        img = self.img
        self.img_bytes = tree_bytes(img)
        self.reads_bytes = os.path.getsize(self.reads_csv)
        self.image_count = len(os.listdir(os.path.join(img, "images")))
        with open(self.reads_csv, "rb") as f:
            self.reads_count = sum(b.count(b"\n") for b in iter(lambda: f.read(1 << 20), b"")) - 1
        log("data: %.1f MB in %s, reads-only CSV %.1f MB" % (self.img_bytes / MB, img,
                                                              self.reads_bytes / MB))
        self.start()
        self.peers_setup()
        # Warm the page cache: every contender reads the same cached data.
        sh("tar cf - -C %s . | cat > /dev/null" % q(img))
        os.makedirs(self.f("out"))
        os.makedirs(self.f("ref"))
        for case, src in (("REL-SMALL", self.tiny_csv),
                          ("REL-BIG", os.path.join(img, "reads.csv"))):
            self.sb("hold", "open", case, "--authority", "Bench warrant", "--purpose",
                    "criminal-investigation", "--operator", "bench.tech")
            self.sb("ingest", case, src, "--operator", "bench.tech")
        # The released 1 GB bundle that sealbox-verify and sealbox-open use.
        r = self.measure("setup release", "%s release REL-BIG --to pros --purpose prosecution "
                         "--authority 'Bench order' --operator bench.tech --out %s --timeout 120"
                         % (q(self.p("sealbox")), q(self.f("ref/rel"))), button=True)
        self.big_release = [os.path.join(self.f("ref/rel"), n) for n in os.listdir(self.f("ref/rel"))
                            if n.endswith(".sbx")][0]
        self.sb("log", "export", self.f("log.sbxl"), "--operator", "bench.auditor")
        small_dir = self.f("ref/small")
        self.measure("setup release", "%s release REL-SMALL --to pros --purpose prosecution "
                     "--authority 'Bench order' --operator bench.tech --out %s --timeout 120"
                     % (q(self.p("sealbox")), q(small_dir)), button=True)
        self.small_bundle_bytes = sum(os.path.getsize(os.path.join(small_dir, n))
                                      for n in os.listdir(small_dir) if n.endswith(".sbx"))
        shutil.rmtree(small_dir)
        # The peers' reference ciphertexts for the decrypt direction.
        tar_img = "tar cf - -C %s ." % q(img)
        sh("%s > %s" % (tar_img, q(self.f("ref/x.tar"))))
        sh("%s | gpg --batch --yes -e -s --compress-algo none -r %s -u %s -o %s" % (
            tar_img, self.gpg_fpr, self.gpg_fpr, q(self.f("ref/x.gpg"))), env=self.genv)
        sh("%s | age -r %s -o %s" % (tar_img, self.age_pub, q(self.f("ref/x.age"))))
        if self.a.cms_decrypt:
            sh("%s | openssl cms -encrypt -stream -aes-256-gcm -binary -outform DER -recip %s -out %s"
               % (tar_img, q(self.f("pki/p.pem")), q(self.f("ref/x.p7m"))))
        sh(["sync", "-f", self.work], check=False)
        del r

    # --- TPM commands, counted at the TCTI --------------------------------------
    def count_tpm(self):
        q = shlex.quote
        img = self.img
        tcti = "pcap:" + self.env["SEALBOX_TCTI"]
        ops = [
            ("hold open", None, ["hold", "open", "TPM-SEAL", "--authority", "Bench warrant",
                                 "--purpose", "criminal-investigation", "--operator", "bench.tech"]),
            ("seal (ingest of the image set)", "seal",
             ["ingest", "TPM-SEAL", os.path.join(img, "reads.csv"), "--operator", "bench.tech"]),
            ("seal (ingest of the 1 KB export)", "seal_small",
             ["ingest", "TPM-SEAL", self.tiny_csv, "--operator",
              "bench.tech"]),
            ("release of one 1 KB bundle", "release_small", "REL-SMALL"),
            ("release of one 1 GB bundle", "release_big", "REL-BIG"),
            ("release of a case with two bundles", "release_two", "TPM-SEAL"),
            ("hold close (purge of two bundles)", "purge",
             ["hold", "close", "TPM-SEAL", "--operator", "bench.tech"]),
        ]
        for label, key, what in ops:
            cap = self.f("tpm-%s.pcapng" % (key or "hold"))
            env = dict(self.env, TCTI_PCAP_FILE=cap)
            if os.path.exists(cap):
                os.unlink(cap)
            if isinstance(what, str):
                shutil.rmtree(self.f("out"), ignore_errors=True)
                os.makedirs(self.f("out"))
                self.measure("tpm count " + label, "%s release %s --to pros --purpose prosecution "
                             "--authority 'Bench order' --operator bench.tech --out %s --timeout 120"
                             " --tcti %s" % (q(self.p("sealbox")), what, q(self.f("out/rel")), q(tcti)),
                             env=env, button=True)
            else:
                sh([self.p("sealbox")] + what + ["--tcti", tcti], env=env)
            c = json.loads(sh([sys.executable, TPMCOUNT, cap, "--json"]).stdout)
            c["operation"] = label
            self.tpm_counts[key or "hold_open"] = c
            log("TPM commands, %s: %d (%s)" % (label, c["commands"], " ".join(c["names"])))
        shutil.rmtree(self.f("out"), ignore_errors=True)
        os.makedirs(self.f("out"))

    def warm(self):
        """Reads every contender's input once more, untimed: on a shared
        machine the page cache evicts part of the image set between rounds
        (the first full run here saw sealbox's parser read images from disk),
        and a contender must not pay for another's write-back or eviction."""
        q = shlex.quote
        files = [self.big_release, self.reads_csv] + [
            self.f("ref/" + n) for n in ("x.tar", "x.gpg", "x.age", "x.p7m") if os.path.exists(self.f("ref/" + n))]
        sh("tar cf - -C %s . | cat > /dev/null; cat %s > /dev/null" % (
            q(self.img), " ".join(q(x) for x in files)))

    # --- the rounds ---------------------------------------------------------------
    def run(self):
        C = self.contenders()
        runs = self.a.runs
        for c in C:
            self.results[c["key"]] = {"label": c["label"], "group": c["group"], "bytes": c["bytes"],
                                      "runs": []}
        for rnd in range(runs):
            order = C[rnd % len(C):] + C[:rnd % len(C)]
            log("round %d/%d (load %s)" % (rnd + 1, runs, " ".join("%.2f" % x for x in loadavg())))
            self.warm()
            for c in order:
                if c["runs"] is not None and rnd >= c["runs"]:
                    continue
                if c["pre"]:
                    c["pre"]()
                cmd = c["cmd"]() if callable(c["cmd"]) else c["cmd"]
                r = self.measure(c["key"], cmd, env=c["env"], button=c["button"])
                if c["speed"]:
                    m = re.findall(r"^\+F:\d+:[^:]+:([0-9.]+)", r["stdout_tail"], re.M)
                    r["speed_MBps"] = float(m[-1]) / MB if m else None
                if c["post"]:
                    c["post"]()
                del r["stdout_tail"]
                self.results[c["key"]]["runs"].append(r)
                extra = ""
                if c["button"]:
                    extra = " (box %.2f s: %.2f before the button, %.2f after the press)" % (
                        r["box_s"], r["before_button_s"], r["after_press_s"])
                if c["speed"]:
                    extra = " %.0f MB/s" % (r["speed_MBps"] or 0)
                log("  %-18s %7.2f s  %7.1f MB RSS  load %.2f%s" % (
                    c["key"], r["wall_s"], r.get("rss_kb", 0) / 1024, r["load1"], extra))

    # --- summary ----------------------------------------------------------------
    def summarize(self):
        for key, res in self.results.items():
            runs = res["runs"]
            if not runs:
                continue
            w = [r["wall_s"] for r in runs]
            s = {"n": len(runs), "median_s": statistics.median(w), "min_s": min(w), "max_s": max(w),
                 "rss_max_kb": max(r.get("rss_kb", 0) for r in runs),
                 "load1_median": statistics.median(r["load1"] for r in runs)}
            cpu = [r.get("user_s", 0) + r.get("sys_s", 0) for r in runs]
            s["cpu_median_s"] = statistics.median(cpu)
            if res["bytes"]:
                s["MBps_median"] = res["bytes"] / MB / s["median_s"]
                s["MBps_min"] = res["bytes"] / MB / s["max_s"]
                s["MBps_max"] = res["bytes"] / MB / s["min_s"]
            if "speed_MBps" in runs[0]:
                sp = [r["speed_MBps"] for r in runs if r.get("speed_MBps")]
                s["MBps_median"] = statistics.median(sp)
                s["MBps_min"], s["MBps_max"] = min(sp), max(sp)
            if "box_s" in runs[0]:
                for k in ("box_s", "before_button_s", "human_wait_s", "after_press_s"):
                    v = [r[k] for r in runs]
                    s[k.replace("_s", "") + "_median_s"] = statistics.median(v)
                    s[k.replace("_s", "") + "_min_s"] = min(v)
                    s[k.replace("_s", "") + "_max_s"] = max(v)
            res["stats"] = s

    def st(self, key, field="median_s"):
        r = self.results.get(key)
        return r["stats"][field] if r and "stats" in r else None

    def targets(self):
        T = []

        def ratio(a, b):
            return a / b if a and b else None

        def add(name, value, unit, goal, met, note=""):
            T.append({"target": name, "value": value, "unit": unit, "goal": goal,
                      "met": bool(met) if met is not None else None, "note": note})

        seal = self.st("seal.sealbox")
        seal_mb = self.st("seal.sealbox", "MBps_median")
        add("seal throughput (with fsync)", seal_mb, "MB/s", ">= 1000 MB/s", seal_mb and seal_mb >= 1000)
        def cpu_note(peer, own):
            c = ratio(self.st(peer, "cpu_median_s"), self.st(own, "cpu_median_s"))
            return "CPU-time ratio %.2fx" % c if c else ""

        r = ratio(self.st("seal.age"), seal)
        add("seal vs tar | age (speed-up)", r, "x", ">= 1.0x (not slower)", r and r >= 1.0,
            cpu_note("seal.age", "seal.sealbox"))
        r = ratio(self.st("seal.gpg"), seal)
        add("seal vs tar | gpg -e -s (speed-up)", r, "x", ">= 4x", r and r >= 4.0,
            cpu_note("seal.gpg", "seal.sealbox"))
        v = self.st("verify.sealbox", "MBps_median")
        add("sealbox-verify throughput", v, "MB/s", ">= 1500 MB/s", v and v >= 1500)
        r = ratio(self.st("open.age"), self.st("open.sealbox"))
        add("sealbox-open vs age -d | tar x (speed-up)", r, "x", ">= 1.2x", r and r >= 1.2,
            cpu_note("open.age", "open.sealbox"))
        small, big = self.st("release.small", "box_median_s"), self.st("release.big", "box_median_s")
        r = ratio(big, small)
        add("release 1 GB / release 1 KB (time of the box, without the human wait)", r, "x",
            "<= 2x", r and r <= 2.0,
            "total incl. wait: %.2f s vs %.2f s; after the press: %.2f s vs %.2f s" % (
                self.st("release.big") or 0, self.st("release.small") or 0,
                self.st("release.big", "after_press_median_s") or 0,
                self.st("release.small", "after_press_median_s") or 0))
        t = self.st("reads.sealbox")
        n = self.reads_count
        add("%d CSV reads ingested and sealed" % n, t, "s",
            "< 2 s" if n >= 1000000 else "< 2 s (for 1,000,000; quick mode has fewer)",
            t is not None and t < 2.0 if n >= 1000000 else None)
        worst = max(((k, r["stats"]["rss_max_kb"]) for k, r in self.results.items()
                     if k.split(".")[0] in ("seal", "verify", "open", "release", "reads")
                     and k.endswith(("sealbox", "small", "big")) and "stats" in r),
                    key=lambda x: x[1], default=(None, 0))
        add("peak RSS of every sealbox operation", worst[1] / 1024, "MB", "< 64 MB",
            worst[1] < RSS_LIMIT_KB, "largest: %s" % worst[0])
        seal_cmds = max(self.tpm_counts.get(k, {}).get("commands", 0) for k in ("seal", "seal_small"))
        add("TPM commands per seal", seal_cmds, "commands", "<= 3", seal_cmds <= 3)
        rel = [self.tpm_counts.get(k, {}).get("commands", 0) for k in ("release_small", "release_big")]
        two = self.tpm_counts.get("release_two", {}).get("commands")
        add("TPM commands per bundle released", max(rel), "commands", "<= 4", max(rel) <= 4,
            "a case of two bundles: %s" % two)
        return T

    def write(self, info, started, elapsed):
        targets = self.targets()
        doc = {"generated": started, "elapsed_s": elapsed, "quick": self.a.quick,
               "runs_per_contender": self.a.runs, "machine": info,
               "load_at_end": loadavg(),
               "data": {"image_set_bytes": self.img_bytes, "image_count": self.image_count,
                        "reads_only_bytes": self.reads_bytes, "reads_only_count": self.reads_count,
                        "released_bundle_bytes": os.path.getsize(self.big_release),
                        "small_bundle_bytes": self.small_bundle_bytes},
               "results": self.results, "tpm_commands": self.tpm_counts, "targets": targets}
        os.makedirs(self.out, exist_ok=True)
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=False)
            f.write("\n")
        with open(os.path.join(self.out, "results.md"), "w") as f:
            f.write(self.markdown(doc))
        log("wrote %s/results.md and results.json" % self.out)

    def markdown(self, doc):
        def cell(s):
            return s.replace("|", "\\|")
        m = doc["machine"]
        L = []
        w = L.append
        w("# sealbox benchmark results%s\n" % (" (QUICK MODE: small data, not comparable)" if doc["quick"] else ""))
        w("Generated %s by `make bench%s` (tests/bench/bench.py) in %.0f s; each contender run %d times, "
          "interleaved; median (min-max).\n" % (doc["generated"], " BENCH_QUICK=1" if doc["quick"] else "",
                                                doc["elapsed_s"], doc["runs_per_contender"]))
        w("## Machine\n")
        fl = ", ".join("%s %s" % (k, "yes" if v else "no") for k, v in m["crypto_flags"].items())
        w("- CPU: %s (family %s, model %s), %s cores, %s GiB memory%s" % (
            m.get("cpu_model"), m.get("cpu_family", "?"), m.get("cpu_model_number", "?"), m["cores"],
            m["memory_gib"], ", hypervisor " + m["hypervisor"] if m.get("hypervisor") else ""))
        w("- CPU flags: %s" % fl)
        w("- kernel %s; work directory on %s; sealbox tree %s" % (
            m["kernel"], m.get("work_fs", "?"), m.get("sealbox_tree", "?")))
        w("- %s" % "; ".join("%s" % v for v in m["tools"].values()))
        w("- load average (1, 5, 15 min) at start %s, at end %s; the machine is shared, so "
          "each run's 1-minute load is in results.json and its median below\n" % (
              " ".join("%.2f" % x for x in m["load_at_start"]),
              " ".join("%.2f" % x for x in doc["load_at_end"])))
        d = doc["data"]
        w("## Data\n")
        w("- image set: %d reads, one 50-200 KB image of random bytes each, plus reads.csv: "
          "%.1f MB (%d bytes)" % (d["image_count"], d["image_set_bytes"] / MB, d["image_set_bytes"]))
        w("- reads-only CSV: %d reads, %.1f MB" % (d["reads_only_count"], d["reads_only_bytes"] / MB))
        w("- released bundle (image set): %.1f MB; small bundle: %d bytes (its export is ~1 KB of CSV)\n"
          % (d["released_bundle_bytes"] / MB, d["small_bundle_bytes"]))
        w("Throughput = the input's bytes (image set, or bundle for verify) / wall time. RSS = peak "
          "resident set of the largest single process of the command (GNU time's ru_maxrss). "
          "The data is in the page cache for every contender (read before the rounds and again, untimed, at the start of each round).\n")
        groups = [("seal", "Sealing the image set"), ("verify", "Verifying the released bundle (no keys)"),
                  ("open", "Opening: decrypt, verify, extract the image set"),
                  ("release", "Release (the button is pressed by the script when amber blinks)"),
                  ("reads", "Reads without images"), ("limit", "The physical limit (one core)")]
        ref = {"seal": "seal.sealbox", "open": "open.sealbox", "verify": "verify.sealbox",
               "reads": "reads.sealbox"}
        for g, title in groups:
            rows = [(k, r) for k, r in doc["results"].items() if r["group"] == g and "stats" in r]
            if not rows:
                continue
            w("## %s\n" % title)
            if g == "release":
                w("| contender | total | box's time (before button + after press) | after the press "
                  "| human wait | peak RSS | load |")
                w("|---|---|---|---|---|---|---|")
                for k, r in rows:
                    s = r["stats"]
                    w("| %s | %.2f s (%.2f-%.2f) | %.2f s (%.2f-%.2f) | %.2f s (%.2f-%.2f) | %.2f s | "
                      "%.1f MB | %.1f |" % (
                          cell(r["label"]), s["median_s"], s["min_s"], s["max_s"], s["box_median_s"],
                          s["box_min_s"], s["box_max_s"], s["after_press_median_s"],
                          s["after_press_min_s"], s["after_press_max_s"], s["human_wait_median_s"],
                          s["rss_max_kb"] / 1024, s["load1_median"]))
                w("")
                continue
            if g == "limit":
                w("| measure | MB/s (min-max) |")
                w("|---|---|")
                for k, r in rows:
                    s = r["stats"]
                    w("| %s | %.0f (%.0f-%.0f) |" % (cell(r["label"]), s["MBps_median"], s["MBps_min"], s["MBps_max"]))
                w("")
                continue
            rk = ref.get(g)
            w("| contender | time | MB/s | sealbox speed-up | CPU (user+sys) | peak RSS | load |")
            w("|---|---|---|---|---|---|---|")
            for k, r in rows:
                s = r["stats"]
                sp = ""
                if rk and k != rk and rk in doc["results"] and "stats" in doc["results"][rk]:
                    sp = "%.2fx" % (s["median_s"] / doc["results"][rk]["stats"]["median_s"])
                w("| %s%s | %.2f s (%.2f-%.2f) | %.0f (%.0f-%.0f) | %s | %.2f s | %.1f MB | %.1f |" % (
                    "**" + cell(r["label"]) + "**" if k == rk else cell(r["label"]), " (%d run)" % s["n"] if s["n"] == 1 else "",
                    s["median_s"], s["min_s"], s["max_s"], s["MBps_median"], s["MBps_min"], s["MBps_max"],
                    sp, s["cpu_median_s"], s["rss_max_kb"] / 1024, s["load1_median"]))
            w("")
            if rk:
                w("(sealbox speed-up = the contender's median time / sealbox's.)\n")
        w("## TPM commands per operation (counted at the TCTI)\n")
        w("Counted by running each operation once more through the tpm2-tss `pcap` TCTI "
          "(`--tcti pcap:swtpm:path=...`) and counting the commands in the capture "
          "(tests/bench/tpmcount.py). sealbox-verify and sealbox-open link no TPM library: 0.\n")
        w("| operation | commands | which |")
        w("|---|---|---|")
        for k, c in doc["tpm_commands"].items():
            w("| %s | %d | %s |" % (c["operation"], c["commands"], " ".join(c["names"])))
        w("\n## Targets (issue 6)\n")
        w("| target | measured | goal | |")
        w("|---|---|---|---|")
        for t in doc["targets"]:
            v = t["value"]
            vs = "n/a" if v is None else ("%.2f %s" % (v, t["unit"]) if isinstance(v, float) else "%s %s" % (v, t["unit"]))
            st = {True: "met", False: "**missed**", None: "not judged"}[t["met"]]
            w("| %s | %s | %s | %s%s |" % (cell(t["target"]), vs, t["goal"], st,
                                          (" (" + cell(t["note"]) + ")") if t["note"] else ""))
        w("")
        return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--img", required=True)
    ap.add_argument("--reads", required=True)
    ap.add_argument("--tiny", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cms-decrypt", type=int, default=1,
                    help="also time openssl cms -decrypt once (slow, holds the input in memory)")
    a = ap.parse_args()
    if not os.path.exists("/usr/bin/time"):
        sys.exit("bench: /usr/bin/time is missing (apt-get install time)")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.time()
    b = Bench(a)
    info = machine(os.path.dirname(os.path.abspath(a.work)) or ".")
    try:
        b.setup()
        b.run()
        b.count_tpm()
        b.summarize()
        b.write(info, started, time.time() - t0)
    finally:
        b.stop()
        # The peers' reference ciphertexts are ~4 GB; the box (state, the
        # released bundle) stays for profiling by hand (bench/README.md).
        for n in ("x.tar", "x.gpg", "x.age", "x.p7m"):
            if os.path.exists(b.f("ref/" + n)):
                os.unlink(b.f("ref/" + n))
        shutil.rmtree(b.f("out"), ignore_errors=True)
    for t in b.targets():
        v = t["value"]
        log("%-70s %s %s" % (t["target"], "n/a" if v is None else ("%.2f" % v if isinstance(v, float) else v),
                            {True: "met", False: "MISSED", None: "-"}[t["met"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
