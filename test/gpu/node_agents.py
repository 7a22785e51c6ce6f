"""GPU runs of the Node agent (`seedcast agent`, cuda staging, tcp-over-cuda and nccl) with the
Python shim engines of test/gpu/engines/engine_proc.py. Run on the lent machine through
test/gpu/run-agents.sh (which unpacks Node); every sub-test is isolated and time-boxed.

  python3 test/gpu/node_agents.py --node NODE --out OUT issue7 [--gpu 0] [--arch llama]
  python3 test/gpu/node_agents.py --node NODE --out OUT issue11
  python3 test/gpu/node_agents.py --node NODE --out OUT dry      # CPU: fixture engines, fake libcuda

Pods are local processes: an agent (`--local-dir` cluster: WeightTransfers as files) plus an
engine process, both with CUDA_VISIBLE_DEVICES set to the pod's GPU.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
MAIN = os.path.join(REPO, "src", "cli", "main.ts")
ENGINE = os.path.join(HERE, "engines", "engine_proc.py")
NS = "default"
PROCS: list[subprocess.Popen] = []


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception:  # noqa: BLE001
        return None


def wait_for(pred, timeout, what, interval=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


class GpuMemory(threading.Thread):
    """Max used GPU memory per pid (nvidia-smi), sampled every 0.2 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.max: dict[int, int] = {}
        self.stop = threading.Event()
        self.ok = shutil.which("nvidia-smi") is not None

    def run(self):
        while self.ok and not self.stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                for row in out.strip().splitlines():
                    pid, mib = [x.strip() for x in row.split(",")]
                    self.max[int(pid)] = max(self.max.get(int(pid), 0), int(mib))
            except Exception:  # noqa: BLE001
                pass
            self.stop.wait(0.2)


class Cluster:
    def __init__(self, root, node, env, bucket="256Mi", step_ms=30000, dry=False):
        self.root = root
        self.dir = os.path.join(root, "cluster")
        os.makedirs(os.path.join(self.dir, "transfers"), exist_ok=True)
        self.node = node
        self.env = env
        self.bucket = bucket
        self.step_ms = step_ms
        self.dry = dry
        self.token = uuid.uuid4().hex + uuid.uuid4().hex

    def pod(self, name, gpu, extra_env=None, device=0):
        return Pod(self, name, gpu, extra_env or {}, device)

    def transfer(self, name, fingerprint, seed, receivers, transport, deadline_s=120):
        port = free_port()
        obj = {
            "apiVersion": "seedcast.dev/v1alpha1",
            "kind": "WeightTransfer",
            "metadata": {"name": name, "namespace": NS, "uid": str(uuid.uuid4())},
            "spec": {
                "weightSource": "gpu-test",
                "fingerprint": fingerprint,
                "source": {"type": "Seed", "seed": {"pod": seed.name, "uid": seed.uid}},
                "receivers": [{"pod": r.name, "uid": r.uid} for r in receivers],
                "transport": transport,
                "ranks": 1,
                "ports": [{"rank": 0, "port": port}],
                "deadline": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + deadline_s)),
                "attempt": 0,
            },
        }
        path = os.path.join(self.dir, "transfers", f"{name}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(obj, f)
        os.replace(path + ".tmp", path)
        return time.time()

    def delete(self, name):
        try:
            os.remove(os.path.join(self.dir, "transfers", f"{name}.json"))
        except FileNotFoundError:
            pass

    def status(self, name):
        st: dict = {}
        recv = {}
        for f in sorted(glob.glob(os.path.join(self.dir, "status", name, "*.json"))):
            frag = read_json(f) or {}
            for e in frag.get("receivers", []):
                recv[e["pod"]] = e
            if "seed" in frag:
                st["seed"] = frag["seed"]
            if "rendezvous" in frag:
                st["rendezvous"] = frag["rendezvous"]
        st["receivers"] = recv
        return st


class Pod:
    def __init__(self, cluster: Cluster, name, gpu, extra_env, device=0):
        self.cluster = cluster
        self.name = name
        self.uid = str(uuid.uuid4())
        self.dir = os.path.join(cluster.root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "a.sock")
        self.gpu = gpu
        self.env = dict(cluster.env, **extra_env)
        if gpu is not None:
            self.env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        tok = os.path.join(self.dir, "token")
        with open(tok, "w") as f:
            f.write(cluster.token)
        self.http = free_port()
        flags = {
            "pod-name": name, "pod-uid": self.uid, "namespace": NS, "pod-ip": "127.0.0.1", "socket": self.socket,
            "port": str(self.http), "http-host": "127.0.0.1", "token-file": tok, "local-dir": cluster.dir,
            "staging-dir": os.path.join(self.dir, "staging"), "bucket-bytes": cluster.bucket,
            "step-timeout-ms": str(cluster.step_ms), "gpu": "on", "cuda-devices": str(device), "log-level": "info",
        }
        args = [cluster.node, MAIN, "agent"] + [x for k, v in flags.items() for x in (f"--{k}", v)]
        self.agent_log = os.path.join(cluster.root, f"{name}-agent.log")
        self.agent = subprocess.Popen(args, stdout=open(self.agent_log, "w"), stderr=subprocess.STDOUT, env=self.env, cwd=REPO)
        PROCS.append(self.agent)
        self.engine = None

    def start_engine(self, args, tag):
        self.engine_log = os.path.join(self.cluster.root, f"{self.name}-engine.log")
        if self.cluster.dry:
            cmd = [self.cluster.node, MAIN, "fixture-engine", "--socket", self.socket, "--tp", "1"] + args
        else:
            cmd = [sys.executable, ENGINE] + args + ["--socket", self.socket, "--tag", tag]
        self.engine = subprocess.Popen(cmd, stdout=open(self.engine_log, "w"), stderr=subprocess.STDOUT, env=self.env, cwd=REPO)
        PROCS.append(self.engine)

    def fingerprint(self, timeout=300):
        def fp():
            if self.agent.poll() is not None:
                raise RuntimeError(f"agent {self.name} exited {self.agent.returncode}: {tail(self.agent_log)}")
            if self.engine is not None and self.engine.poll() not in (None, 0):
                raise RuntimeError(f"engine {self.name} exited {self.engine.returncode}: {tail(self.engine_log)}")
            d = read_json(os.path.join(self.cluster.dir, "pods", f"{self.name}.json")) or {}
            return d.get("annotations", {}).get("seedcast.dev/fingerprint")

        return wait_for(fp, timeout, f"{self.name} fingerprint", 0.1)

    def log_lines(self, msg):
        out = []
        for line in open(self.agent_log, errors="replace"):
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if j.get("msg") == msg:
                out.append(j)
        return out

    def kill(self, sig=signal.SIGKILL):
        for p in (self.engine, self.agent):
            if p is not None and p.poll() is None:
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass


def tail(path, n=1500):
    try:
        return open(path, errors="replace").read()[-n:]
    except OSError:
        return ""


def wait_receiver(cl: Cluster, name, pod, timeout):
    def done():
        e = cl.status(name)["receivers"].get(pod.name)
        if e and e.get("phase") in ("Succeeded", "Failed"):
            return e
        if pod.agent.poll() is not None:
            raise RuntimeError(f"agent {pod.name} exited: {tail(pod.agent_log)}")
        return None

    return wait_for(done, timeout, f"{pod.name} in {name}", 0.02)


def wait_seed(cl: Cluster, name, timeout):
    def done():
        s = cl.status(name).get("seed")
        return s if s and s.get("phase") in ("Succeeded", "Failed") else None

    return wait_for(done, timeout, f"seed of {name}", 0.02)


def iso_s(t):
    from datetime import datetime

    return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- issue 7 (tcp over cuda)

def issue7(args, env, out, arch, gpu):
    root = tempfile.mkdtemp(prefix=f"sc7-{arch}-")
    cl = Cluster(root, args.node, env, bucket=args.bucket, step_ms=20000, dry=args.dry)
    mem = GpuMemory()
    mem.start()
    tag = f"i7-{arch}"
    res: dict = {"arch": arch, "gpu": gpu, "transport": "tcp", "memory": "cuda", "bucket": args.bucket}
    seed, mism, recv = cl.pod(f"{tag}-seed", gpu), cl.pod(f"{tag}-mm", gpu), cl.pod(f"{tag}-recv", gpu)
    try:
        common = ["--out", out, "--shared", root]
        if args.dry:
            seed.start_engine(["--size", "64Mi", "--state", "loaded"], tag)
            mism.start_engine(["--size", "64Mi", "--state", "empty", "--revision", "other"], tag)
            recv.start_engine(["--size", "64Mi", "--state", "empty"], tag)
        else:
            seed.start_engine(["seed", "--arch", arch] + common, tag)
            mism.start_engine(["mismatch", "--arch", arch] + common, tag)
            recv.start_engine(["receiver", "--arch", arch] + common, tag)
        fps = {p.name: p.fingerprint() for p in (seed, mism, recv)}
        res["fingerprints_equal_seed_receiver"] = fps[seed.name] == fps[recv.name]
        res["fingerprint_mismatch_differs"] = fps[seed.name] != fps[mism.name]
        # 1) mismatched config: refused before any byte moves
        cl.transfer("mm", fps[seed.name], seed, [mism], "tcp")
        e = wait_receiver(cl, "mm", mism, 60)
        s = cl.status("mm").get("seed") or {}
        res["mismatch"] = {"phase": e.get("phase"), "reason": e.get("reason"), "message": (e.get("message") or "")[:300],
                           "receiver_bytesDone": e.get("bytesDone"), "seed_bytesSent": s.get("bytesSent", 0)}
        cl.delete("mm")
        wait_for(lambda: (cl.status("mm").get("seed") or {}).get("phase") in ("Failed", "Succeeded", None) or True, 5, "x")
        time.sleep(0.5)
        # 2) the real receiver
        t0 = cl.transfer("t1", fps[seed.name], seed, [recv], "tcp")
        e = wait_receiver(cl, "t1", recv, 180)
        t1 = time.time()
        res["receiver_entry"] = {k: e.get(k) for k in ("phase", "verified", "bytesDone", "bytesTotal", "gbps", "reason", "message", "startedAt", "verifiedAt")}
        res["wall_transfer_written_to_verified_s"] = t1 - t0
        done = recv.log_lines("received and verified every rank")
        if done:
            res["agent_receive_seconds"] = done[-1].get("seconds")
            res["agent_data_seconds"] = done[-1].get("dataSeconds")
            res["bytes"] = done[-1].get("bytes")
            if res["agent_data_seconds"]:
                res["data_GBps"] = res["bytes"] / res["agent_data_seconds"] / 1e9
        if args.dry:
            res["ok"] = e.get("phase") == "Succeeded"
            return res
        rc = recv.engine.wait(120)
        r = read_json(os.path.join(out, f"{tag}-receiver.json")) or {}
        sd = read_json(os.path.join(out, f"{tag}-seed-live.json")) or read_json(os.path.join(out, f"{tag}-seed.json")) or {}
        mm = read_json(os.path.join(out, f"{tag}-mismatch.json"))
        res.update({
            "receiver_rc": rc,
            "param_GB": sd.get("param_bytes", 0) / 1e9,
            "tensors": sd.get("tensors"),
            "buckets": sd.get("buckets"),
            "tokens_equal": sd.get("tokens") == r.get("tokens"),
            "tokens": (r.get("tokens") or [])[:8],
            "logits_equal": r.get("logits_equal"),
            "logits_max_abs_diff": r.get("logits_max_abs_diff"),
            "weights_equal": sd.get("weights_sha256") == r.get("weights_sha256") and r.get("weights_sha256") is not None,
            "shim_fill": sd.get("copy"),
            "shim_drain": r.get("copy"),
            "engine_direct": {"seed": sd.get("direct"), "receiver": r.get("direct")},
            "seed_cast": sd.get("last_cast"),
            "receiver_cast": r.get("last_cast"),
            "receiver_wait_s": r.get("wait_s"),
            "mismatch_engine": mm,
        })
        ds = res.get("agent_data_seconds") or 0
        if ds and sd.get("copy") and r.get("copy"):
            res["shim_copy_share"] = (sd["copy"]["seconds"] + r["copy"]["seconds"]) / ds
        res["gpu_MiB_max"] = {p.name: {"agent": mem.max.get(p.agent.pid), "engine": mem.max.get(p.engine.pid)} for p in (seed, recv)}
        res["engine_torch_extra_bytes"] = {
            "seed_after_connect": sd.get("torch_allocated_after_connect", 0) - sd.get("torch_allocated_before", 0),
            "receiver_after_connect": r.get("torch_allocated_after_connect", 0) - r.get("torch_allocated_before", 0),
            "receiver_peak_minus_model": r.get("torch_max_allocated", 0) - r.get("torch_allocated_before", 0),
        }
        res["ok"] = bool(res["tokens_equal"] and res["logits_equal"] and res["mismatch"]["reason"] == "FingerprintMismatch"
                         and res["mismatch"]["seed_bytesSent"] == 0)
        return res
    finally:
        mem.stop.set()
        for p in (seed, mism, recv):
            p.kill()
        res["agent_logs_tail"] = {p.name: tail(p.agent_log, 600) for p in (seed, recv)} if not res.get("ok") else None


# --------------------------------------------------------------------------- issue 11 (nccl, 2 GPUs)

def issue11(args, env, out):
    root = tempfile.mkdtemp(prefix="sc11-")
    cl = Cluster(root, args.node, env, bucket=args.bucket, step_ms=args.step_ms, dry=args.dry)
    mem = GpuMemory()
    mem.start()
    tag = "i11"
    res: dict = {"arch": args.big_arch, "transport": "nccl", "bucket": args.bucket, "step_timeout_ms": args.step_ms}
    if args.all_visible:
        # Every process sees both GPUs (NCCL can use NVLink P2P between the agents), its own GPU as
        # ordinal 0 (CUDA_VISIBLE_DEVICES=own,peer): threads that never call cudaSetDevice (the
        # shim's bridge worker opening the IPC handle) then land on the pod's own GPU.
        res["cuda_visible_devices"] = "own,peer"
        seed = cl.pod(f"{tag}-seed", "0,1")
        victim = cl.pod(f"{tag}-victim", "1,0")
        recv = cl.pod(f"{tag}-recv", "1,0")
    else:
        res["cuda_visible_devices"] = "one per pod"
        seed = cl.pod(f"{tag}-seed", 0)
        victim = cl.pod(f"{tag}-victim", 1)
        recv = cl.pod(f"{tag}-recv", 1)
    dev = lambda d: []  # noqa: E731
    pods = (seed, victim, recv)
    try:
        common = ["--out", out, "--shared", root, "--digest", "gpu", "--steps", str(args.steps)]
        if args.dry:
            seed.start_engine(["--size", "64Mi", "--state", "loaded"], tag)
            victim.start_engine(["--size", "64Mi", "--state", "empty"], tag)
            recv.start_engine(["--size", "64Mi", "--state", "empty"], tag)
        else:
            seed.start_engine(["seed", "--arch", args.big_arch] + common + dev(0), tag)
            victim.start_engine(["receiver", "--arch", args.big_arch, "--drain-delay", "0.25"] + common + dev(1), f"{tag}-victim")
            recv.start_engine(["receiver", "--arch", args.big_arch] + common + dev(1), tag)
        fps = {p.name: p.fingerprint(400) for p in pods}
        fp = fps[seed.name]
        res["fingerprints_equal"] = len(set(fps.values())) == 1
        # 1) a receiver killed mid-broadcast: the seed aborts within its deadline and keeps serving
        try:
            cl.transfer("kill", fp, seed, [victim], "nccl")
            def progressed():
                ve = cl.status("kill")["receivers"].get(victim.name) or {}
                if ve.get("phase") in ("Failed", "Succeeded"):
                    raise RuntimeError(f"victim ended before the kill: {ve}")
                return ve.get("bytesDone", 0) > 0

            def cast_started():  # direct casts report bytes only once verified: kill mid-cast instead
                return any(x.get("direct") for x in seed.log_lines("rendezvous complete, forming the communicator"))

            wait_for(lambda: progressed() or cast_started(), 120, "victim progress", 0.01)
            if cast_started():
                time.sleep(2.0)  # the victim's engine stalls 0.25 s per bucket from bucket 2 on
            res["kill_direct"] = cast_started()
            tk = time.time()
            victim.kill()
            s = wait_seed(cl, "kill", args.step_ms / 1000 + 60)
            ta = time.time()
            fails = seed.log_lines("nccl seed rank failed")
            res["kill"] = {"seed_phase": s.get("phase"), "seed_message": (s.get("message") or "")[:400],
                           "seed_bytesSent": s.get("bytesSent"), "kill_to_seed_failed_s": ta - tk,
                           "deadline_s": args.step_ms / 1000,
                           "seed_nccl": fails[-1].get("nccl") if fails else None,
                           "seed_err": fails[-1].get("err") if fails else None}
            res["kill"]["within_deadline"] = ta - tk < args.step_ms / 1000
        except Exception as exc:  # noqa: BLE001
            res["kill"] = {"error": repr(exc), "seed_log": tail(seed.agent_log, 1500)}
        cl.delete("kill")
        time.sleep(0.3)
        # 2) the real receiver from the same seed agent
        t0 = cl.transfer("t1", fp, seed, [recv], "nccl", deadline_s=300)
        e = wait_receiver(cl, "t1", recv, 300)
        t1 = time.time()
        res["receiver_entry"] = {k: e.get(k) for k in ("phase", "verified", "bytesDone", "bytesTotal", "gbps", "reason", "message", "startedAt", "verifiedAt")}
        res["wall_transfer_written_to_verified_s"] = t1 - t0
        done = recv.log_lines("received and verified every rank")
        if done:
            res["agent_receive_seconds"] = done[-1].get("seconds")
            res["agent_data_seconds"] = done[-1].get("dataSeconds")
            res["bytes"] = done[-1].get("bytes")
        rs = recv.log_lines("nccl receiver rank done")
        ss = wait_for(lambda: seed.log_lines("nccl seed rank done"), 10, "seed stats", 0.1) if e.get("phase") == "Succeeded" else []
        res["seed_nccl"] = ss[-1].get("nccl") if ss else None
        res["receiver_nccl"] = rs[-1].get("nccl") if rs else None
        res["seed_after_kill_served"] = e.get("phase") == "Succeeded"
        if args.dry:
            res["ok"] = e.get("phase") == "Succeeded"
            return res
        rc = recv.engine.wait(180)
        r = read_json(os.path.join(out, f"{tag}-receiver.json")) or {}
        sd = read_json(os.path.join(out, f"{tag}-seed-live.json")) or read_json(os.path.join(out, f"{tag}-seed.json")) or {}
        res.update({
            "receiver_rc": rc,
            "param_GB": sd.get("param_bytes", 0) / 1e9,
            "tensors": sd.get("tensors"),
            "buckets": sd.get("buckets"),
            "tokens_equal": sd.get("tokens") == r.get("tokens"),
            "tokens": (r.get("tokens") or [])[:8],
            "logits_equal": r.get("logits_equal"),
            "logits_max_abs_diff": r.get("logits_max_abs_diff"),
            "weights_equal": sd.get("weights_sha256") == r.get("weights_sha256") and r.get("weights_sha256") is not None,
            "shim_fill": sd.get("copy"),
            "shim_drain": r.get("copy"),
            "engine_direct": {"seed": sd.get("direct"), "receiver": r.get("direct")},
            "seed_cast": sd.get("last_cast"),
            "receiver_cast": r.get("last_cast"),
            "seed_generate_s": sd.get("generate_s"),
        })
        res["gpu_MiB_max"] = {p.name: {"agent": mem.max.get(p.agent.pid), "engine": mem.max.get(p.engine.pid) if p.engine else None} for p in pods}
        res["engine_torch_extra_bytes"] = {
            "seed_after_connect": sd.get("torch_allocated_after_connect", 0) - sd.get("torch_allocated_before", 0),
            "receiver_peak_minus_model": r.get("torch_max_allocated", 0) - r.get("torch_allocated_before", 0),
        }
        b = res.get("bytes") or 0
        sn = res["seed_nccl"] or {}
        if b and sn.get("broadcastSpanMs"):
            res["agent_broadcast_span_GBps"] = b / (sn["broadcastSpanMs"] / 1000) / 1e9
            res["agent_broadcast_calls_GBps"] = b / (sn["broadcastMs"] / 1000) / 1e9
            res["agent_broadcast_gpu_GBps"] = b / (sn["broadcastGpuMs"] / 1000) / 1e9 if sn.get("broadcastGpuMs") else None
        if b and res.get("agent_data_seconds"):
            res["agent_data_GBps"] = b / res["agent_data_seconds"] / 1e9
        res["ok"] = bool(res["tokens_equal"] and res["logits_equal"] and e.get("phase") == "Succeeded")
        # table sizes for the torch baseline
        return res
    finally:
        mem.stop.set()
        for p in pods:
            p.kill()
        if not res.get("ok"):
            res["agent_logs_tail"] = {p.name: tail(p.agent_log, 800) for p in pods}
            res["engine_logs_tail"] = {p.name: tail(getattr(p, "engine_log", ""), 800) for p in pods}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["issue7", "issue11", "dry"])
    ap.add_argument("--node", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", action="append")
    ap.add_argument("--gpu", type=int, default=0)
    ap.add_argument("--bucket", default="256Mi")
    ap.add_argument("--big-arch", default="llama-10g")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--step-ms", type=int, default=20000)
    ap.add_argument("--dry", action="store_true")
    ap.add_argument("--all-visible", action="store_true", help="issue11: both GPUs visible to every process")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", CUBLAS_WORKSPACE_CONFIG=":4096:8",
               NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1")
    results = {}
    try:
        if args.what in ("issue7", "dry"):
            for i, arch in enumerate(args.arch or ["llama"]):
                try:
                    results[f"issue7-{arch}"] = issue7(args, env, args.out, arch, args.gpu)
                except Exception as exc:  # noqa: BLE001
                    results[f"issue7-{arch}"] = {"error": repr(exc), "trace": traceback.format_exc()[-1500:]}
                log(json.dumps(results[f"issue7-{arch}"], default=str)[:3000])
        if args.what in ("issue11", "dry"):
            try:
                results["issue11"] = issue11(args, env, args.out)
            except Exception as exc:  # noqa: BLE001
                results["issue11"] = {"error": repr(exc), "trace": traceback.format_exc()[-1500:]}
            log(json.dumps(results["issue11"], default=str)[:4000])
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
        name = f"agents-{args.what}" + (f"-{'-'.join(args.arch)}" if args.arch else "") + ("-all-visible" if args.all_visible else "")
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(results, f, indent=1, default=str)
    ok = all(r.get("ok") for r in results.values())
    log("RESULT", "PASS" if ok else "FAIL", {k: v.get("ok") for k, v in results.items()})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
