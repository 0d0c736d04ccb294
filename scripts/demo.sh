#!/usr/bin/env bash
# The quick start (`make demo`): SQLite, and a real Celery worker (with beat, which resumes lost
# jobs) on a broker made of files under var/, so no Redis; long jobs show live progress as they
# do in production. Serves on PORT (default 8000) or the next free port; Ctrl-C, or the web
# server ending, stops the worker too.
#   VAR_DIR (default ./var) holds the database, media, imports and the broker's folders.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
VAR_DIR=$(mkdir -p "${VAR_DIR:-var}" && cd "${VAR_DIR:-var}" && pwd)
export VAR_DIR DEBUG=1 DATABASE_URL= CELERY_BROKER_URL=filesystem:// \
	IMPORT_ROOTS="$VAR_DIR/imports" JOBS_IN_BACKGROUND_THREAD=0

"$PY" manage.py migrate --noinput
"$PY" manage.py demo
port=$("$PY" scripts/free_port.py "${PORT:-8000}")

web='' worker=''
# Each server runs in its own session (setsid), so that its children (the worker's beat
# process) end with it: nothing is left behind.
running() { # true while any process of either server is left
	local pid
	for pid in $web $worker; do kill -0 -- "-$pid" 2>/dev/null && return 0; done
	return 1
}
stop() {
	trap - EXIT INT TERM
	local pid groups=''
	for pid in $web $worker; do groups="$groups -$pid"; done
	if [ -n "$groups" ]; then
		kill -TERM -- $groups 2>/dev/null || true
		# A worker finishes the task in hand first; whatever still runs after 30 s is stopped
		# hard (its job is resumed later by beat's reaper: docs/architecture.md).
		for _ in $(seq 120); do
			running || break
			sleep 0.25
		done
		kill -KILL -- $groups 2>/dev/null || true
		wait 2>/dev/null || true
	fi
	echo "demo stopped"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One worker for everything: every queue (cpu, gpu, io: settings.WORKER_QUEUES).
setsid "$PY" -m celery -A config worker -B --schedule "$VAR_DIR/celerybeat-schedule" \
	-Q cpu,gpu,io --pool threads --concurrency 2 --loglevel warning \
	--without-gossip --without-mingle --without-heartbeat &
worker=$!
setsid "$PY" manage.py runserver --noreload "127.0.0.1:$port" &
web=$!
echo "demo: worker pid $worker, web server pid $web on http://127.0.0.1:$port/"
# Whichever ends first (the web server stopped, or the worker died) ends the demo.
wait -n "$web" "$worker" || true
