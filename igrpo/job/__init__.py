"""Running a job: the command line, one run from config to logged result, base-model builds, thread sharing."""
