# How the recipe runs parallel jobs. Every *_cmd takes Kaldi's run.pl command line:
#   ${feats_cmd} JOB=1:N <log-with-JOB> <command with JOB> ...
#
# On one machine (default): jobs run locally, at most --max-jobs-run at a time.
export feats_cmd="utils/run_local.sh"
export train_cmd="utils/run_local.sh"
export decode_cmd="utils/run_local.sh"

# On a Slurm cluster, e.g.:
# export feats_cmd="utils/slurm.sh --mem 2G --time 2:00:00"
# export train_cmd="utils/slurm.sh --mem 16G --time 48:00:00 --gpu 1"
# export decode_cmd="utils/slurm.sh --mem 4G --time 4:00:00"
