#!/usr/bin/env python3
"""Scale and cost of nodeos-monitor: many failover groups on one three-member etcd, a
crowded group, the handover measured to the millisecond, and one idle monitor.

Real etcd (three members on loopback), real monitors, each supervising the nodeos stub
(tests/bench/nodeos_stub.c: the simulator's ledger records and, in paused mode, its
producer API, for next to no cost). Each group has its own ledger, checked at the end
for overlapping producers. Every process is stopped by its PID; every wait is bounded.

Parts (scripts/bench-scale PART [options]):
  scale     N monitors, two per group (--n 100 500 1000): time to settle, etcd's CPU and
            requests idle and during the events, the monitors' CPU and private memory;
            10 % of the producing monitors SIGTERMed at once (the handover gaps), then
            10 % SIGKILLed at once (takeover after lease expiry); overlaps
  crowded   one group of --candidates monitors: the lock freed by SIGTERM and by SIGKILL,
            exactly one winner, the others' requests (campaigns, reads, watches)
  handover  --rounds handovers of a pair, restart mode (old nodeos's exit to the new one's
            start) and paused mode (pause confirmed to resume confirmed), split into
            etcd's part and the monitors' share, etcd's commit latency beside
  idle      one pair at rest for --seconds, nodeos logging two lines a second: CPU,
            private memory, wake-ups, etcd requests; restart mode without an API, then
            paused mode (health checks every 500 ms)
  all       every part above

Figures go to stdout, and with --json FILE to FILE. --wait-quiet S first waits up to S
seconds for the load average to stay below 0.5 for a minute (other work on the machine
shows in the figures; the load during each run is printed beside them)."""

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scale_lib import (  # noqa: E402
    MONITOR, STUB, Clocks, Cluster, Fleet, GroupLedger, LockWatch, Window, count_overlaps, cpu_ns,
    cpu_seconds, describe_window, first_line, free_port, histogram_delta, histogram_quantile, loadavg,
    log_lines, machine, mem_available_kb, private_kb, proc_status, quantile, raise_fd_limit, read_text,
    smaps_rollup, spread, wait_quiet)
from harness import pid_alive, wait_until  # noqa: E402

MS = 1_000_000
NS = 1_000_000_000


def say(text=""):
    print(text, flush=True)


def ms(ns):
    return ns / MS


class Part:
    """A work directory, a cluster and a fleet, all stopped (by PID) and checked on exit."""

    def __init__(self, args, name):
        self.args = args
        self.name = name
        self.workdir = tempfile.mkdtemp(prefix=f"nm-{name}-", dir=args.workdir)
        self.cluster = None
        self.fleets = []
        self.watch = None
        self.results = {}

    def __enter__(self):
        return self

    def start_cluster(self):
        self.cluster = Cluster(self.workdir).start()
        wait_until(self.cluster.leader, 15, "the etcd members to agree on a leader")
        return self.cluster

    def fleet(self, **kwargs):
        f = Fleet(self.workdir, self.cluster, ttl=self.args.ttl, stop_timeout=self.args.stop_timeout, **kwargs)
        self.fleets.append(f)
        return f

    def __exit__(self, *exc):
        left = []
        for f in self.fleets:
            f.stop()
            left += f.reap_leftovers()
        if left:
            say(f"  ERROR: processes outlived their monitors (SIGKILLed now): {left}")
            self.results["leftovers"] = left
        if self.watch:
            self.watch.stop()
        if self.cluster:
            self.cluster.stop()
        if exc[0] is None and not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            say(f"  files kept in {self.workdir}")
        return False


# --- scale ------------------------------------------------------------------------------

def settle(fleet, ledgers, nodes_by_group, t0, timeout):
    """Waits until every group has exactly one producer and its other monitor a validator;
    returns (producers settled at, validators settled at) in ns after t0, from the ledger
    times (the bench's polling does not enter the figure)."""
    pending = set(ledgers)
    last_producer = last_validator = 0
    deadline = time.monotonic() + timeout
    while pending:
        for g in list(pending):
            lg = ledgers[g]
            lg.refresh()
            producers = [p for p in lg.first_block if p not in lg.stops]
            # A standby: a validator (restart mode), or a paused producer that never signed
            # (paused mode).
            validators = [p for t, p, node, mode in lg.starts if p not in lg.stops
                          and (mode == "validator" or p not in lg.first_block)]
            if len(producers) == 1 and len(validators) == len(nodes_by_group[g]) - 1:
                last_producer = max(last_producer, lg.first_block[producers[0]] - t0)
                last_validator = max(last_validator, max(lg.start_of(v) for v in validators) - t0)
                pending.discard(g)
        if not pending:
            break
        if time.monotonic() >= deadline:
            bad = sorted(pending)[:5]
            raise AssertionError(f"{len(pending)} groups not settled after {timeout:.0f} s, e.g. {bad}: "
                                 + "; ".join(f"{g}: producers {[p for p in ledgers[g].first_block if p not in ledgers[g].stops]}"
                                             for g in bad))
        time.sleep(0.25)
    return last_producer, last_validator


def memory_figures(fleet, cluster):
    mons = [p for p in (private_kb(pid) for pid in fleet.monitor_pids()) if p is not None]
    stubs = [p for p in (private_kb(pid) for pid in fleet.stub_pids()) if p is not None]
    pss = [r.get("Pss", 0) for r in (smaps_rollup(pid) for pid in fleet.monitor_pids()) if r]
    stub_pss = [r.get("Pss", 0) for r in (smaps_rollup(pid) for pid in fleet.stub_pids()) if r]
    rss = [r.get("Rss", 0) for r in (smaps_rollup(pid) for pid in fleet.monitor_pids()) if r]
    etcd = {m.name: int(proc_status(m.proc.pid).get("VmRSS", "0 kB").split()[0]) for m in cluster.members}
    return {"monitor_private_kb_median": statistics.median(mons) if mons else None,
            "monitor_private_kb_max": max(mons) if mons else None,
            "monitor_pss_kb_median": statistics.median(pss) if pss else None,
            "monitor_rss_kb_median": statistics.median(rss) if rss else None,
            "stub_private_kb_median": statistics.median(stubs) if stubs else None,
            "monitors_private_mb_total": sum(mons) / 1024, "stubs_private_mb_total": sum(stubs) / 1024,
            "monitors_pss_mb_total": sum(pss) / 1024, "stubs_pss_mb_total": sum(stub_pss) / 1024,
            "etcd_rss_mb": {k: v / 1024 for k, v in etcd.items()}}


def one_producer(ledger):
    ledger.refresh()
    return len(ledger.live_producers()) == 1


def pick_producers(ledgers, fleet_nodes, groups):
    """{group: (monitor of its producer, producer pid)} for the given groups."""
    out = {}
    for g in groups:
        lg = ledgers[g]
        lg.refresh()
        live = lg.live_producers()
        if len(live) != 1:
            raise AssertionError(f"group {g}: expected one producer, found {live}")
        node = lg.node_of[live[0]]
        out[g] = (fleet_nodes[node], live[0])
    return out


def wait_takeovers(ledgers, victims, since, timeout):
    """Waits until every victim group has a block of a new producer after `since`;
    returns {group: (t, pid)}."""
    found = {}

    def done():
        for g, (node, old_pid) in victims.items():
            if g not in found:
                ledgers[g].refresh()
                first = ledgers[g].first_block_after(since, exclude_pid=old_pid)
                if first:
                    found[g] = first
        return len(found) == len(victims)
    wait_until(done, timeout, f"a new producer in each of the {len(victims)} groups")
    return found


def part_scale(args, n, out):
    say(f"\n== scale: {n} monitors, {n // 2} groups of two, TTL {args.ttl} s, blocks every {args.scale_block_ms} ms")
    rng = random.Random(args.seed)
    with Part(args, f"scale{n}") as part:
        mem_before = mem_available_kb()
        cluster = part.start_cluster()
        part.watch = LockWatch(part.workdir, cluster.urls[0], "s", "t")
        fleet = part.fleet(block_ms=args.scale_block_ms)
        leader = cluster.leader()
        if args.attach != "all":
            # Every monitor on one member: the leader, or a follower that forwards each
            # renewal to it (what attaching to the leader would save).
            member = next(m for m in cluster.members if (m.name == leader) == (args.attach == "leader"))
            fleet.endpoints = [member.url]
            say(f"  every monitor attached to {member.name} only (the leader is {leader})")
        groups = [f"s{i:04d}" for i in range(1, n // 2 + 1)]
        nodes_by_group = {}
        for g in groups:
            nodes_by_group[g] = [fleet.add(g, f"{g}-a"), fleet.add(g, f"{g}-b")]
        by_name = {node.name: node for node in fleet.nodes}
        ledgers = {g: GroupLedger(fleet.ledger_path(g)) for g in groups}
        time.sleep(2)
        mem_cluster = mem_available_kb()
        r = part.results
        r["n"] = n
        r["attach"], r["leader"] = args.attach, leader
        r["load_before"] = loadavg()

        # Start: every monitor at once (as fast as this process can spawn them), or paced.
        start_window = Window(cluster, [])
        t0 = time.monotonic_ns()
        for i, node in enumerate(fleet.nodes):
            if args.start_rate > 0:
                time.sleep(max(0.0, t0 / NS + i / args.start_rate - time.monotonic()))
            node.start()
        launched = time.monotonic_ns() - t0
        producers_at, validators_at = settle(fleet, ledgers, nodes_by_group, t0, args.settle_timeout)
        start_window.monitor_pids = []  # the monitors' start-up CPU is read whole below
        w = start_window.close()
        startup_cpu = [cpu_ns(pid) / NS for pid in fleet.monitor_pids()]
        r["launch_s"] = launched / NS
        r["settled_producers_s"] = producers_at / NS
        r["settled_validators_s"] = validators_at / NS
        r["start_window"] = w
        r["monitor_startup_cpu_ms_median"] = statistics.median(startup_cpu) * 1000
        say(f"  launched {n} monitors in {launched / NS:.2f} s; every group had exactly one producer "
            f"{producers_at / NS:.2f} s after the first launch ({(producers_at - launched) / NS:.2f} s after the "
            f"last), every standby its validator after {validators_at / NS:.2f} s")
        say(f"  start-up: each monitor used {r['monitor_startup_cpu_ms_median']:.0f} ms of CPU (median) to get there; "
            f"etcd {w['etcd_cpu_s']:.2f} CPU-s; machine busy {w['machine_busy_cores']:.2f} cores; "
            f"load {w['load_start']:.2f} -> {w['load_end']:.2f}")
        say(f"  start-up requests a monitor: " +
            ", ".join(f"{k} {v / n:.2f}" for k, v in w["requests"].items()) +
            f"; etcd leader changes: {w['leader_changes']:.0f}")

        # Idle.
        time.sleep(args.quiesce)
        w = Window(cluster, fleet.monitor_pids(), fleet.stub_pids())
        time.sleep(args.idle_seconds)
        r["idle"] = w.close()
        r["idle"]["leader"] = cluster.leader()  # it may have moved under the start's load
        r["memory"] = memory_figures(fleet, cluster)
        r["mem_available_mb"] = {"before": mem_before / 1024, "etcd_started": mem_cluster / 1024,
                                 "fleet_settled": mem_available_kb() / 1024}
        m = r["memory"]
        used = (mem_cluster - mem_available_kb()) / 1024
        say(f"  idle {describe_window(r['idle'])}; etcd's leader {r['idle']['leader']}")
        say(f"  memory: each monitor {m['monitor_private_kb_median']:.0f} kB private (median; max "
            f"{m['monitor_private_kb_max']:.0f}; RSS {m['monitor_rss_kb_median']:.0f} kB, PSS "
            f"{m['monitor_pss_kb_median']:.0f} kB), each stub {m['stub_private_kb_median']:.0f} kB; "
            f"MemAvailable fell by {used:.0f} MB for the fleet ({used * 1024 / n:.0f} kB a monitor with its stub; "
            f"other work on the machine moves it too), "
            f"etcd RSS {', '.join(f'{k} {v:.0f} MB' for k, v in m['etcd_rss_mb'].items())}")
        etcd_mb = sum(m["etcd_rss_mb"].values())
        m["run_total_mb"] = m["monitors_pss_mb_total"] + m["stubs_pss_mb_total"] + etcd_mb
        say(f"  the run's memory on the machine: monitors {m['monitors_pss_mb_total']:.0f} MB + stubs "
            f"{m['stubs_pss_mb_total']:.0f} MB (PSS: shared pages counted once) + etcd {etcd_mb:.0f} MB (RSS) = "
            f"{m['run_total_mb']:.0f} MB; the monitors' private memory in all: {m['monitors_private_mb_total']:.0f} MB")

        # 10 % of the producers SIGTERMed at once.
        k = max(1, round(len(groups) * args.fraction))
        chosen = rng.sample(groups, 2 * k)
        term_groups, kill_groups = chosen[:k], chosen[k:]
        victims = pick_producers(ledgers, by_name, term_groups)
        w = Window(cluster, fleet.monitor_pids(), fleet.stub_pids())
        t_sig = time.monotonic_ns()
        for g, (node, pid) in victims.items():
            node.signal(signal.SIGTERM)
        found = wait_takeovers(ledgers, victims, t_sig, args.ttl * 3)
        settled = max(t for t, pid in found.values()) - t_sig
        time.sleep(max(0.0, args.event_window - (time.monotonic_ns() - t_sig) / NS))
        r["sigterm_window"] = w.close()
        codes, killed = fleet.stop([v[0] for v in victims.values()], sig=None, bound=args.stop_timeout + 5)
        gaps, handovers, stop_to_block, revoke_seen, exits = [], [], [], [], []
        for g, (node, old_pid) in victims.items():
            lg = ledgers[g]
            new_t, new_pid = found[g]
            gaps.append(ms(new_t - lg.last_block[old_pid]))
            if old_pid in lg.stops:
                handovers.append(ms(lg.start_of(new_pid) - lg.stops[old_pid]))
                stop_to_block.append(ms(new_t - lg.stops[old_pid]))
                deletes = part.watch.deletes(g, t_sig)
                if deletes:
                    revoke_seen.append(ms(deletes[0]["t"] - lg.stops[old_pid]))
            exits.append(codes.get(node.name))
        r["sigterm"] = {"groups": k, "all_taken_over_ms": ms(settled), "gap_ms": gaps,
                        "stop_to_start_ms": handovers, "stop_to_first_block_ms": stop_to_block,
                        "stop_to_key_deleted_ms": revoke_seen,
                        "exit_codes": sorted(set(map(str, exits))), "sigkilled": killed}
        say(f"  SIGTERM to {k} producing monitors at once: every group had a new producer within "
            f"{ms(settled):.0f} ms; exits {sorted(set(map(str, exits)))}")
        say(f"    old producer's last block -> new producer's first block: {spread(gaps)}")
        say(f"    old nodeos's stop -> new nodeos's start: {spread(handovers)}; -> first block: {spread(stop_to_block)}")
        say(f"    old nodeos's stop -> the lock key's deletion seen by a watcher: {spread(revoke_seen)}")
        say(f"    during the event: {describe_window(r['sigterm_window'])}")

        # 10 % SIGKILLed at once: takeover after the lease expires.
        victims = pick_producers(ledgers, by_name, kill_groups)
        w = Window(cluster, fleet.monitor_pids(), fleet.stub_pids())
        t_kill = time.monotonic_ns()
        for g, (node, pid) in victims.items():
            node.signal(signal.SIGKILL)
        for g, (node, pid) in victims.items():
            node.proc.wait(5)
        wait_until(lambda: not any(pid_alive(pid) for _, pid in victims.values()), 5,
                   "the killed monitors' stubs to die with them (PR_SET_PDEATHSIG)")
        found = wait_takeovers(ledgers, victims, t_kill, args.ttl * 3 + 10)
        settled = max(t for t, pid in found.values()) - t_kill
        r["sigkill_window"] = w.close()
        expiry, after_expiry, gaps = [], [], []
        for g, (node, old_pid) in victims.items():
            lg = ledgers[g]
            new_t, new_pid = found[g]
            deletes = part.watch.deletes(g, t_kill)
            if deletes:
                expiry.append((deletes[0]["t"] - t_kill) / NS)
                after_expiry.append(ms(new_t - deletes[0]["t"]))
            gaps.append((new_t - lg.last_block[old_pid]) / NS)
        r["sigkill"] = {"groups": k, "all_taken_over_s": settled / NS, "kill_to_expiry_s": expiry,
                        "expiry_to_first_block_ms": after_expiry, "gap_s": gaps}
        say(f"  SIGKILL to {k} producing monitors at once: their nodeos died with them; every group had a new "
            f"producer within {settled / NS:.2f} s")
        say(f"    kill -> lease expired (the key's deletion seen by a watcher): {spread(expiry, 's', 2)}")
        say(f"    lease expired -> new producer's first block: {spread(after_expiry)}")
        say(f"    during the event: {describe_window(r['sigkill_window'])}")

        # Stop everything; then the invariant on every ledger.
        t_stop = time.monotonic()
        codes, killed = fleet.stop()
        r["stop_all_s"] = time.monotonic() - t_stop
        left = fleet.reap_leftovers()
        overlaps = runs = 0
        for g in groups:
            o, n_runs = count_overlaps(fleet.ledger_path(g))
            overlaps += o
            runs += n_runs
        r["overlaps"] = overlaps
        r["producing_periods"] = runs
        r["stop_sigkilled"] = killed
        r["left_after_stop"] = left
        bad = sorted({c for c in codes.values() if c not in (0, -9)})
        say(f"  stopped all {len(codes)} monitors (SIGTERM at once) in {r['stop_all_s']:.1f} s; exit codes other "
            f"than 0: {bad or 'none'} (the SIGKILLed ones: -9); SIGKILLed for outliving the stop: {len(killed)}; "
            f"processes left: {len(left)}")
        say(f"  overlaps: {overlaps} in {len(groups)} ledgers ({runs} producing periods)")
        r["load_after"] = loadavg()
        out[f"scale_{n}"] = r


# --- one crowded group ------------------------------------------------------------------

def part_crowded(args, out):
    c = args.candidates
    say(f"\n== crowded: {c} candidates in one group, TTL {args.ttl} s")
    with Part(args, "crowded") as part:
        cluster = part.start_cluster()
        part.watch = LockWatch(part.workdir, cluster.urls[0], "crowd", "crowe")
        fleet = part.fleet(block_ms=args.block_ms)
        nodes = [fleet.add("crowd", f"c{i:02d}", metrics_port=free_port()) for i in range(1, c + 1)]
        by_name = {node.name: node for node in nodes}
        ledger = GroupLedger(fleet.ledger_path("crowd"))
        t0 = time.monotonic_ns()
        for node in nodes:
            node.start()
        producers_at, validators_at = settle(fleet, {"crowd": ledger}, {"crowd": nodes}, t0, args.settle_timeout)
        say(f"  settled: one producer after {producers_at / NS:.2f} s, {c - 1} validators after {validators_at / NS:.2f} s")
        time.sleep(args.quiesce)
        rounds = []
        for kind in [signal.SIGTERM] * args.crowded_rounds + [signal.SIGKILL] * args.crowded_rounds:
            ledger.refresh()
            live = ledger.live_producers()
            assert len(live) == 1, f"expected one producer, found {live}"
            old_pid = live[0]
            victim = by_name[ledger.node_of[old_pid]]
            others = [n for n in nodes if n is not victim and n.running()]
            before = {n.name: n.etcd_requests() for n in others}
            grpc0 = cluster.grpc_started()
            t = time.monotonic_ns()
            victim.signal(kind)
            new_t, new_pid = wait_takeovers({"crowd": ledger}, {"crowd": (victim, old_pid)}, t,
                                            args.ttl * 3 + 10)["crowd"]
            time.sleep(2.0)
            after = {n.name: n.etcd_requests() for n in others}
            grpc1 = cluster.grpc_started()
            ledger.refresh()
            live = ledger.live_producers()
            winners = {ledger.node_of[p] for p in ledger.first_block if ledger.first_block[p] > t}
            puts = part.watch.puts("crowd", t)
            deletes = part.watch.deletes("crowd", t)
            per_kind = {}
            for name in after:
                for k, v in after[name].items():
                    per_kind.setdefault(k, []).append(v - before[name].get(k, 0))
            row = {"signal": signal.Signals(kind).name, "winners": sorted(winners), "producers_now": len(live),
                   "lock_writes": len(puts),
                   "requests_per_monitor": {k: {"max": max(v), "sum": sum(v)} for k, v in sorted(per_kind.items())},
                   "etcd_rpcs": {k: grpc1.get(k, 0) - grpc0.get(k, 0) for k in grpc1
                                 if grpc1.get(k, 0) - grpc0.get(k, 0)}}
            if kind == signal.SIGTERM:
                victim.proc.wait(args.stop_timeout + 5)
                row["stop_to_first_block_ms"] = ms(new_t - ledger.stops[old_pid]) if old_pid in ledger.stops else None
                row["gap_ms"] = ms(new_t - ledger.last_block[old_pid])
            else:
                victim.proc.wait(5)
                row["kill_to_expiry_s"] = (deletes[0]["t"] - t) / NS if deletes else None
                row["expiry_to_first_block_ms"] = ms(new_t - deletes[0]["t"]) if deletes else None
            rounds.append(row)
            rq = ", ".join(f"{k} max {v['max']:.0f} (all {v['sum']:.0f})" for k, v in row["requests_per_monitor"].items())
            timing = (f"stop -> first block {row['stop_to_first_block_ms']:.1f} ms" if kind == signal.SIGTERM
                      else f"kill -> expiry {row['kill_to_expiry_s']:.2f} s, expiry -> first block "
                           f"{row['expiry_to_first_block_ms']:.1f} ms")
            say(f"  {row['signal']} to the producer's monitor: winners {row['winners']} ({len(live)} producing now, "
                f"{len(puts)} write of the lock); {timing}")
            say(f"    requests of each of the {len(others)} others until 2 s after the takeover: {rq}")
            say(f"    etcd RPCs: {row['etcd_rpcs']}")
            # The victim comes back as a candidate.
            victim.start()
            wait_until(lambda: ledger.validator_started(victim.name, t), 20, f"{victim.name} to run a validator again")
            time.sleep(1.0)
        codes, killed = fleet.stop()
        fleet.reap_leftovers()
        overlaps, runs = count_overlaps(fleet.ledger_path("crowd"))
        say(f"  overlaps: {overlaps} ({runs} producing periods)")
        out["crowded"] = {"candidates": c, "settled_s": producers_at / NS, "rounds": rounds, "overlaps": overlaps}


# --- the handover, to the millisecond ---------------------------------------------------

def commit_latency(cluster, before, after):
    """etcd's own latencies over the rounds, per member: the p50 and p99 bucket bounds."""
    out = {}
    for member in after:
        for metric in after[member]:
            delta = histogram_delta(before.get(member, {}).get(metric, []), after[member][metric])
            total = delta[-1][1] if delta else 0
            out.setdefault(metric, {})[member] = {
                "count": total, "p50_le_ms": (histogram_quantile(delta, 0.5) or 0) * 1000,
                "p99_le_ms": (histogram_quantile(delta, 0.99) or 0) * 1000}
    return out


LATENCIES = ["etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds",
             "etcd_network_peer_round_trip_time_seconds"]


def handover_rounds(args, part, fleet, group, paused):
    """Runs the rounds; returns [per-round figures]."""
    a, b = fleet.add(group, f"{group}-a"), fleet.add(group, f"{group}-b")
    ledger = GroupLedger(fleet.ledger_path(group))
    logs = {a.name: 0, b.name: 0}

    def start(node):
        logs[node.name] += 1
        node.start(os.path.join(fleet.logdir, f"{node.name}-{logs[node.name]}.log"))

    def ready(node, since):
        """The node is a candidate standby again: its nodeos runs (paused mode: healthy)."""
        if paused:  # healthy, or on a chain that stopped with nobody producing
            return wait_until(lambda: any(s in (read_text(node.log_path) or "")
                                          for s in ("nodeos is healthy", "the chain has stopped")), 20,
                              f"{node.name}'s nodeos to be healthy")
        return wait_until(lambda: ledger.validator_started(node.name, since), 20, f"{node.name} to run a validator")

    t0 = time.monotonic_ns()
    start(a)
    start(b)
    if paused:
        wait_until(lambda: one_producer(ledger), 30, "one producer")
        for node in (a, b):
            ready(node, t0)
    else:
        settle(fleet, {group: ledger}, {group: [a, b]}, t0, 30)
    time.sleep(1.0)
    rounds = []
    clocks = Clocks()
    for i in range(args.rounds):
        ledger.refresh()
        live = ledger.live_producers()
        assert len(live) == 1, f"round {i}: expected one producer, found {live}"
        old_pid = live[0]
        old = a if ledger.node_of[old_pid] == a.name else b
        new = b if old is a else a
        t = time.monotonic_ns()
        old_log, new_log = old.log_path, new.log_path
        old.signal(signal.SIGTERM)
        code = old.proc.wait(args.stop_timeout + 5)
        new_t, new_pid = wait_takeovers({group: ledger}, {group: (old, old_pid)}, t, 10)[group]
        rounds.append({"t": t, "old": old.name, "new": new.name, "old_pid": old_pid, "new_pid": new_pid,
                       "new_first_block": new_t, "old_log": old_log, "new_log": new_log, "exit": code})
        start(old)
        ready(old, t)
        time.sleep(args.round_pause)
    ledger.refresh()
    clocks2 = Clocks()
    drift = abs(clocks2.offset - clocks.offset) / MS
    figures = []
    for r in rounds:
        lo = log_lines(r["old_log"], clocks, r["t"] - 5 * MS)
        ln = log_lines(r["new_log"], clocks, r["t"] - 5 * MS)
        after = r["t"] - 2 * MS
        f = {"exit": r["exit"]}
        f["revoke_sent"] = first_line(lo, "release lease", after)
        f["deleted_seen"] = first_line(ln, "lock key deleted", after)
        f["campaign_sent"] = first_line(ln, "campaign with lease", after)
        f["acquired"] = first_line(ln, "lock acquired", after)
        if paused:
            f["paused_confirmed"] = first_line(lo, "nodeos paused;", after)
            f["resume_sent"] = first_line(ln, "resume nodeos", after)
            f["resumed"] = first_line(ln, "nodeos resumed: it produces", after)
        else:
            f["old_stop"] = ledger.stops.get(r["old_pid"])
            f["new_start"] = ledger.start_of(r["new_pid"])
            f["validator_sigterm"] = first_line(ln, "SIGTERM to nodeos pid", after)
            f["producer_started"] = first_line(ln, "started active nodeos", after)
        f["gap_ms"] = ms(r["new_first_block"] - ledger.last_block[r["old_pid"]])
        figures.append(f)
    return figures, drift


def part_handover(args, out):
    say(f"\n== handover: {args.rounds} rounds each, restart mode and paused mode, the stub as nodeos; "
        f"TTL {args.ttl} s, three etcd members")
    results = {}
    for mode in ("restart", "paused"):
        with Part(args, f"handover-{mode}") as part:
            cluster = part.start_cluster()
            paused = mode == "paused"
            if paused:
                # A head lag of 1 s, as the end-to-end tests: a new group's chain starts stopped.
                fleet = part.fleet(block_ms=args.paused_block_ms, api=True, standby_mode="paused",
                                   debug=True, extra_args=["--max-head-lag", "1"])
            else:
                fleet = part.fleet(block_ms=args.block_ms, debug=True)
            lat0 = cluster.histograms(LATENCIES)
            grpc0 = cluster.grpc_started()
            load0 = loadavg()
            figures, drift = handover_rounds(args, part, fleet, f"ho-{mode}", paused)
            lat = commit_latency(cluster, lat0, cluster.histograms(LATENCIES))
            load1 = loadavg()
            leader = cluster.leader()
            rows = {}

            def add(name, value):
                if value is not None:
                    rows.setdefault(name, []).append(value)

            for f in figures:
                etcd_revoke = f["deleted_seen"] - f["revoke_sent"] if None not in (f["deleted_seen"], f["revoke_sent"]) else None
                etcd_campaign = f["acquired"] - f["campaign_sent"] if None not in (f["acquired"], f["campaign_sent"]) else None
                etcd = etcd_revoke + etcd_campaign if None not in (etcd_revoke, etcd_campaign) else None
                add("etcd: revoke sent -> deletion seen by the standby", etcd_revoke and ms(etcd_revoke))
                add("etcd: campaign sent -> answered", etcd_campaign and ms(etcd_campaign))
                add("standby: deletion seen -> campaign sent",
                    ms(f["campaign_sent"] - f["deleted_seen"]) if None not in (f["campaign_sent"], f["deleted_seen"]) else None)
                add("old producer's last block -> new producer's first block", f["gap_ms"])
                if paused:
                    if None in (f["resumed"], f["revoke_sent"], f["paused_confirmed"], f["resume_sent"]) or etcd is None:
                        continue
                    total = f["resumed"] - f["revoke_sent"]
                    api = f["resumed"] - f["resume_sent"]
                    add("pause confirmed -> resume confirmed", ms(f["resumed"] - f["paused_confirmed"]))
                    add("lock released (revoke sent) -> resume confirmed", ms(total))
                    add("nodeos API: resume sent -> confirmed (resume + paused)", ms(api))
                    add("old monitor: pause confirmed -> revoke sent (one block interval)",
                        ms(f["revoke_sent"] - f["paused_confirmed"]))
                    add("new monitor: lock acquired -> resume sent", ms(f["resume_sent"] - f["acquired"]))
                    add("monitors' share (released -> resumed, minus etcd and the API)", ms(total - etcd - api))
                else:
                    if None in (f["old_stop"], f["new_start"], f["revoke_sent"]) or etcd is None:
                        continue
                    total = f["new_start"] - f["old_stop"]
                    add("old nodeos's stop record -> new nodeos's start record", ms(total))
                    add("old monitor: nodeos's stop -> revoke sent", ms(f["revoke_sent"] - f["old_stop"]))
                    add("new monitor: lock acquired -> new nodeos's start record (stops the validator, starts the producer)",
                        ms(f["new_start"] - f["acquired"]))
                    add("monitors' share (handover minus etcd)", ms(total - etcd))
            say(f"\n  {mode} mode ({len(figures)} rounds; exits {sorted({str(f['exit']) for f in figures})}; "
                f"log times to the millisecond, clock offset drift {drift:.3f} ms; load {load0:.2f} -> {load1:.2f}):")
            for name, values in rows.items():
                say(f"    {name}: {spread(values)}")
            say(f"    etcd's own latency over the rounds (leader {leader}; bucket bounds):")
            for metric, per in lat.items():
                say(f"      {metric}: " + "; ".join(f"{m} p50 <= {v['p50_le_ms']:g} ms, p99 <= {v['p99_le_ms']:g} ms "
                                                    f"(n={v['count']:.0f})" for m, v in sorted(per.items())))
            fleet.stop()
            fleet.reap_leftovers()
            overlaps, runs = count_overlaps(fleet.ledger_path(f"ho-{mode}"))
            say(f"    overlaps: {overlaps} ({runs} producing periods)")
            results[mode] = {"rows": {k: {"median": statistics.median(v), "p99": quantile(v, 0.99), "n": len(v)}
                                      for k, v in rows.items()},
                             "etcd_latency": lat, "overlaps": overlaps, "load": [load0, load1]}
    out["handover"] = results


# --- idle -------------------------------------------------------------------------------

def smaps_top(pid, top=8):
    """[(mapping, private kB)] of a process, largest first."""
    text = read_text(f"/proc/{pid}/smaps") or ""
    per, current = {}, None
    for line in text.splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            current = head[5] if len(head) > 5 else "[anon]"
            current = os.path.basename(current) if current.startswith("/") else current
        elif line.startswith(("Private_Clean:", "Private_Dirty:")) and current:
            per[current] = per.get(current, 0) + int(line.split()[1])
    return sorted(per.items(), key=lambda kv: -kv[1])[:top]


def part_idle(args, out):
    say(f"\n== idle: a pair at TTL {args.ttl} s for {args.seconds} s, nodeos logging 2 lines a second; three etcd members")
    results = {}
    variants = {"restart": "restart mode, no API", "paused": "paused mode, --nodeos-api"}
    for mode, variant in variants.items():
        if args.idle_mode not in ("both", mode):
            continue
        with Part(args, "idle") as part:
            cluster = part.start_cluster()
            if mode == "restart":
                fleet = part.fleet(block_ms=500, log_ms=500)
            else:
                fleet = part.fleet(block_ms=500, log_ms=500, api=True, standby_mode="paused")
            group = "idle"
            nodes = [fleet.add(group, f"idle-{x}", metrics_port=free_port()) for x in "ab"]
            ledger = GroupLedger(fleet.ledger_path(group))
            t0 = time.monotonic_ns()
            for node in nodes:
                node.start()
            settle(fleet, {group: ledger}, {group: nodes}, t0, 30)
            time.sleep(args.quiesce)
            ledger.refresh()
            active_name = ledger.node_of[ledger.live_producers()[0]]
            before = {n.name: (cpu_ns(n.pid), int(proc_status(n.pid)["voluntary_ctxt_switches"])) for n in nodes}
            stubs0 = {p: cpu_ns(p) for p in fleet.stub_pids()}
            grpc0 = cluster.grpc_started()
            load0 = loadavg()
            t = time.monotonic()
            time.sleep(args.seconds)
            elapsed = time.monotonic() - t
            grpc1 = cluster.grpc_started()
            rows = []
            for n in nodes:
                cpu1, sw1 = cpu_ns(n.pid), int(proc_status(n.pid)["voluntary_ctxt_switches"])
                st = proc_status(n.pid)
                roll = smaps_rollup(n.pid)
                rows.append({
                    "node": n.name, "role": "active" if n.name == active_name else "standby",
                    "cpu_pct": (cpu1 - before[n.name][0]) / (elapsed * NS) * 100,
                    "wakeups_per_s": (sw1 - before[n.name][1]) / elapsed,
                    "private_kb": roll.get("Private_Clean", 0) + roll.get("Private_Dirty", 0),
                    "private_dirty_kb": roll.get("Private_Dirty", 0), "rss_kb": roll.get("Rss", 0),
                    "pss_kb": roll.get("Pss", 0), "threads": int(st["Threads"]),
                    "fds": len(os.listdir(f"/proc/{n.pid}/fd")), "top_private": smaps_top(n.pid)})
            stub_cpu = sum((cpu_ns(p) or s) - s for p, s in stubs0.items()) / NS
            requests = {k: (grpc1.get(k, 0) - grpc0.get(k, 0)) / elapsed * 60 / len(nodes) for k in grpc1
                        if grpc1.get(k, 0) - grpc0.get(k, 0)}
            say(f"\n  {variant} (over {elapsed:.0f} s; load {load0:.2f} -> {loadavg():.2f}):")
            for row in rows:
                say(f"    {row['node']} ({row['role']}): CPU {row['cpu_pct']:.4f} % of a core, "
                    f"{row['wakeups_per_s']:.2f} wake-ups/s; private {row['private_kb']} kB "
                    f"(dirty {row['private_dirty_kb']}), RSS {row['rss_kb']} kB, PSS {row['pss_kb']} kB, "
                    f"{row['threads']} thread(s), {row['fds']} fds")
                say("      private memory by mapping: " + ", ".join(f"{k} {v} kB" for k, v in row["top_private"]))
            say(f"    nodeos's CPU (both): {stub_cpu / elapsed * 100:.3f} % of a core")
            say(f"    etcd requests a minute per monitor: {sum(requests.values()):.1f} "
                f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(requests.items(), key=lambda kv: -kv[1]))})")
            results[variant] = {"rows": rows, "requests_per_minute": requests, "seconds": elapsed}
    out["idle"] = results


# --- main -------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=["scale", "crowded", "handover", "idle", "all"])
    p.add_argument("--n", type=int, nargs="+", default=[100, 500, 1000], help="scale: monitors (two per group)")
    p.add_argument("--ttl", type=int, default=10)
    p.add_argument("--stop-timeout", type=int, default=5)
    p.add_argument("--block-ms", type=int, default=20, help="the stub's block interval (crowded, handover)")
    p.add_argument("--scale-block-ms", type=int, default=500,
                   help="scale: the block interval (500 ms as on EOS: a thousand stubs signing every 20 ms "
                        "would take a core of this machine by themselves)")
    p.add_argument("--paused-block-ms", type=int, default=50, help="the block interval in paused mode")
    p.add_argument("--fraction", type=float, default=0.1, help="scale: share of the producers signalled at once")
    p.add_argument("--attach", choices=["all", "leader", "follower"], default="all",
                   help="scale: give each monitor every member (all), or only the leader or a follower")
    p.add_argument("--idle-seconds", type=float, default=30, help="scale: the idle window")
    p.add_argument("--event-window", type=float, default=5, help="scale: seconds measured from the SIGTERMs")
    p.add_argument("--quiesce", type=float, default=5, help="seconds of rest before a measurement")
    p.add_argument("--settle-timeout", type=float, default=120)
    p.add_argument("--start-rate", type=float, default=0,
                   help="scale: monitors started a second (0: all at once, as fast as they can be spawned)")
    p.add_argument("--candidates", type=int, default=50, help="crowded: monitors in the group")
    p.add_argument("--crowded-rounds", type=int, default=3, help="crowded: rounds of each signal")
    p.add_argument("--rounds", type=int, default=50, help="handover: rounds of each mode")
    p.add_argument("--round-pause", type=float, default=0.5, help="handover: rest between rounds")
    p.add_argument("--seconds", type=float, default=300, help="idle: the measured stretch")
    p.add_argument("--idle-mode", choices=["both", "restart", "paused"], default="both",
                   help="idle: the standby modes measured")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--wait-quiet", type=float, default=0, help="wait up to this many seconds for a quiet machine")
    p.add_argument("--workdir", default=None, help="where the work directories go (default: the temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directories")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args()

    for path, what in ((MONITOR, "nodeos-monitor (NM_MONITOR)"), (STUB, "the stub (NM_NODEOS_STUB)")):
        if not os.access(path, os.X_OK):
            sys.exit(f"no executable {what} at {path}: run scripts/build")
    fds = raise_fd_limit()
    say(f"machine: {machine()}; descriptors per process: {fds}")
    say(f"monitor: {MONITOR}; stub: {STUB}")
    if args.wait_quiet:
        quiet, load = wait_quiet(args.wait_quiet, out=say)
        say(f"load average {load:.2f}: " + ("quiet" if quiet else f"not quiet after {args.wait_quiet:.0f} s; running anyway"))
    out = {"machine": machine(), "load_start": loadavg()}
    parts = ["idle", "handover", "crowded", "scale"] if args.part == "all" else [args.part]
    try:
        for part in parts:
            if part == "scale":
                for n in args.n:
                    part_scale(args, n, out)
            elif part == "crowded":
                part_crowded(args, out)
            elif part == "handover":
                part_handover(args, out)
            elif part == "idle":
                part_idle(args, out)
    finally:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1, default=str)
            say(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
