"""Running the pipeline on a Ray cluster: ``dpsrgan submit`` (:mod:`~dpsrgan.cluster.submit`)
sends a job, :mod:`~dpsrgan.cluster.job` is what the job runs there, and
:mod:`~dpsrgan.cluster.results` carries its lockfile and outs back in the job's log.
"""
