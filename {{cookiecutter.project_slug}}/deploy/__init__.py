"""`make deploy`: ship dags/ to the DAG bundle production reads, with no window of broken or missing DAGs.

Run from the project root as `python -m deploy` (the Makefile's `deploy` target puts plugins/,
where the DAG checks live, on PYTHONPATH). The package, in the order a deploy uses it:
  project        this project's folders, its bundle's name and the default target
  validate       step 1: what ships, checked as `make test` checks it
  targets        where it goes (s3, gcs, volume, git_bundle), and what a sync may delete
  object_stores  the S3 and GCS clients behind the s3 and gcs targets
  parse_wait     step 5: until the dag-processor has parsed what was deployed
  cli            the steps in order, the progress report and the arguments
"""


class DeployError(Exception):
    """Stops the deploy; the message says what to fix."""
