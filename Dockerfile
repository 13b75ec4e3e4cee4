# callcenter: one image for every process kind (web, listen, worker); docker-compose.yml picks
# the command. Build: docker build -t callcenter .
FROM python:3.11-slim

# ffmpeg decodes GSM/MP3 recordings for transcription (speech/audio.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
# requirements.txt also lists the test tools; they are small, and one file keeps one truth.
# gunicorn and prometheus-client are named again in case requirements.txt predates them
# (pip skips them when already satisfied).
COPY requirements.txt ./
RUN pip install -r requirements.txt \
    && pip install "gunicorn>=22,<24" "prometheus-client>=0.20,<1"

COPY pyproject.toml README.md ./
COPY callcenter ./callcenter
COPY web ./web
RUN pip install --no-deps .

COPY docker/entrypoint.sh /usr/local/bin/entrypoint.sh

# Never run as root: the app needs no privilege, and a web process is the exposed one.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin callcenter \
    && mkdir -p /app/data /recordings \
    && chown callcenter /app/data /recordings
USER callcenter

# Logs are JSON lines on stderr (LOG_JSON unset = JSON when not a terminal).
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]

# The panel: gunicorn's threaded worker runs Flask-SocketIO's threading mode with
# simple-websocket (one thread per WebSocket, no eventlet/gevent monkey patching). One worker
# per container: Socket.IO sessions live in the process that accepted them (see web/wsgi.py).
EXPOSE 8000
CMD ["gunicorn", "--worker-class", "gthread", "--workers", "1", "--threads", "100", \
     "--bind", "0.0.0.0:8000", "--access-logfile", "-", "web.wsgi:app"]
