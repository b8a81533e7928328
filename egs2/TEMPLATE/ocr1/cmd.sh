# How ocr.sh runs its jobs: choose a backend (see htr/jobs.py for every option).
#   local: jobs on this machine (the default; --max_jobs_run N limits how many at once)
#   slurm: job arrays through sbatch; --gpu, --mem, --time, --num_threads, --partition map to Slurm
#   ssh:   jobs round-robin over the hosts listed in conf/hosts (a shared file system is assumed)
# Every command is used as: ${cmd} [options] [JOB=1:N] <log file> <command...>
# While a job runs, the launcher shows its latest progress line (training: epoch, step, loss, images/s,
# ETA; decoding, features, stats: lines done, lines/s, ETA): one line kept up to date on a terminal,
# else a line at most every HTR_PROGRESS_INTERVAL seconds (default 30; off: none). Logs are unchanged.
cmd_backend=${cmd_backend:-local}

case "${cmd_backend}" in
local)
    train_cmd="python3 -m htr.bin.run_jobs --backend local"
    cuda_cmd="python3 -m htr.bin.run_jobs --backend local"
    decode_cmd="python3 -m htr.bin.run_jobs --backend local"
    ;;
slurm)
    train_cmd="python3 -m htr.bin.run_jobs --backend slurm --mem 4G --time 4:00:00"
    # --requeue 3: training is requeued on preemption and resubmitted after a SIGUSR1 180 s before the
    # time limit, which makes it checkpoint and exit 75; stage 11 resumes at the next batch
    cuda_cmd="python3 -m htr.bin.run_jobs --backend slurm --mem 16G --time 48:00:00 --requeue 3"
    decode_cmd="python3 -m htr.bin.run_jobs --backend slurm --mem 4G --time 4:00:00"
    ;;
ssh)
    train_cmd="python3 -m htr.bin.run_jobs --backend ssh --hosts conf/hosts"
    cuda_cmd="python3 -m htr.bin.run_jobs --backend ssh --hosts conf/hosts"
    decode_cmd="python3 -m htr.bin.run_jobs --backend ssh --hosts conf/hosts"
    ;;
*)
    echo "cmd.sh: unknown cmd_backend=${cmd_backend} (local, slurm, ssh)" >&2
    return 1
    ;;
esac
