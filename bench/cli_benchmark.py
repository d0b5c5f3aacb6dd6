"""Times each inspection command on a work dir: wall time of `inception-retrain <command>` in a
fresh process (median of --repeat), and the lines it printed on stderr; prints the CPU.

    python bench/cli_benchmark.py --work-dir runs/local
"""
import argparse
import platform
import shutil
import statistics
import subprocess
import time

COMMANDS = (["history"], ["history", "-o", "json"], ["report", "--list"],
            ["report", "--list", "-o", "json"], ["rollback"])


def cpu() -> str:
    """The CPU model (Linux /proc/cpuinfo), else platform's guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return f"{names[0]} x{len(names)}" if names else platform.processor()
    except OSError:
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default="runs/local")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    exe = shutil.which("inception-retrain") or "inception-retrain"
    print(f"CPU: {cpu()}; work dir {args.work_dir}")
    print(f"{'command':<32} {'wall s (median)':>16} {'stderr lines':>13}")
    for command in COMMANDS:
        times, lines = [], 0
        for _ in range(args.repeat):
            start = time.perf_counter()
            done = subprocess.run([exe, *command, "--work-dir", args.work_dir],
                                  capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - start)
            lines = max(lines, len(done.stderr.splitlines()))
        print(f"{' '.join(command):<32} {statistics.median(times):>16.2f} {lines:>13}")


if __name__ == "__main__":
    main()
