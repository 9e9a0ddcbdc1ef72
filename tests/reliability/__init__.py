"""Faults against the real stack (issue #14, "The suite", items 8-15), and where each is checked.

- SIGKILL of a worker mid-reply and mid-image, and a restarted worker serving the next job:
  tests/webapp/core/test_jobs.py (``test_a_killed_pool_process_fails_its_job_at_once``,
  ``test_a_restarted_worker_fails_what_its_previous_self_left_running``).
- The broker (the embedded Redis) restarted mid-stream: test_broker_restart.py (its own Redis and worker).
- A duplicate task delivery makes one reply and one set of images:
  tests/webapp/core/test_jobs.py (``test_a_task_delivered_twice_runs_once``).
- A reload in the middle of a stream loses no chunk and doubles none, and a ``<script>`` split
  across two streamed chunks stays inert, in Chromium: test_stream_browser.py.
- A slow websocket consumer does not slow the worker: test_slow_consumer.py.
- Cancel and stop land within 2 s: test_stop_latency.py.
- A time limit on every task: test_time_limits.py.
- Disk full while storing an image: test_disk_full.py (a tmpfs as a worker's media; needs root
  and local storage) and, in-process, tests/webapp/studio/test_services.py.
"""
