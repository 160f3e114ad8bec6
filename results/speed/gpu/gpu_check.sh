#!/bin/bash
# The GPU check of 2026-12-04 (results/speed/README.md). Run from the repository root on the
# device machine, with wheels of mujoco, mujoco-core, gymnasium, farama-notifications, glfw and
# stable-baselines3 in .whl/; LOCAL=1 DEV=cpu runs it here as a dry run.
DEV=${DEV:-cuda}
[ -n "$LOCAL" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
[ -n "$LOCAL" ] || nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, mujoco, gymnasium; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no cuda', 'mujoco', mujoco.__version__, 'gymnasium', gymnasium.__version__)" || exit 1
nproc
step() { echo; echo "=== $1"; shift; local t0=$(date +%s.%N); "$@" 2>&1 | tr '\r' '\n' | grep -v -E "it/s|step/s|ep/s|^\s*$" | tail -25; echo "rc=${PIPESTATUS[0]} wall $(python3 -c "import time; print(round(time.time() - $t0, 1))") s"; }
R=$OUT/runs
# 1. the main job, DE on the unicycle: cuda against cpu, same seeds
step "unicycle cpu" python3 experiments/run_mpc.py --env unicycle-goal --no-render --runs-dir $R --out $OUT/unicycle-cpu.json
step "unicycle cuda" python3 experiments/run_mpc.py --env unicycle-goal --no-render --runs-dir $R --device $DEV --out $OUT/unicycle-cuda.json
# 2. hopper DE with its prior and critic on cuda, 40 steps
step "hopper cpu" python3 experiments/run_mpc.py --env hopper --no-render --episodes 1 --max-steps 40 --runs-dir $R --out $OUT/hopper-cpu.json
step "hopper cuda" python3 experiments/run_mpc.py --env hopper --no-render --episodes 1 --max-steps 40 --runs-dir $R --device $DEV --out $OUT/hopper-cuda.json
# 3. half-cheetah: the student decoder and the world model on cuda
step "half-cheetah student cuda" python3 experiments/run_mpc.py --env half-cheetah --no-render --episodes 1 --max-steps 30 --runs-dir $R --device $DEV
step "half-cheetah world model cuda" python3 experiments/run_mpc.py --env half-cheetah --reward world-model --no-render --episodes 1 --max-steps 30 --runs-dir $R --device $DEV
step "half-cheetah world model tsinf cuda" python3 experiments/run_mpc.py --env half-cheetah --reward world-model --propagation tsinf --no-render --episodes 1 --max-steps 20 --runs-dir $R --device $DEV
# 4. training on cuda: a prior, its student, a world model
step "train_prior cuda" python3 experiments/train_prior.py --env unicycle-goal --steps 300 --device $DEV --out /tmp/u.pt
step "distill_prior cuda" python3 experiments/distill_prior.py --prior /tmp/u.pt --train-steps 200 --device $DEV --out /tmp/u-student.pt
step "collect hopper random" python3 experiments/collect_data.py --env hopper --source random --episodes 4 --max-steps 100 --out /tmp/h.npz
step "train_world_model cuda" python3 experiments/train_world_model.py --env hopper --data /tmp/h.npz --epochs 3 --device $DEV --checkpoint /tmp/h-wm.pt
step "plan with the cuda-trained prior" python3 experiments/run_mpc.py --env unicycle-goal --prior /tmp/u.pt --episodes 2 --no-render --runs-dir $R --device $DEV
python3 - <<'PY'
import json, os
out = os.environ["OUT"]
for task in ("unicycle", "hopper"):
    runs = {d: json.load(open(f"{out}/{task}-{d}.json")) for d in ("cpu", "cuda") if os.path.exists(f"{out}/{task}-{d}.json")}
    for d, r in runs.items():
        eps = r["episodes"]
        print(task, d, "returns", [round(e.get("return", 0.0), 3) for e in eps], "steps", [e.get("steps") for e in eps], "hz", r["summary"].get("control_hz"))
PY
echo done
