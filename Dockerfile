# The bot as a container: a non-root user, the database in the /data volume, the exact versions
# of constraints.txt. Settings come from the environment (compose.yaml reads .env).
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 loyalty && mkdir /data && chown loyalty /data
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY bot bot
COPY handlers handlers
COPY messages messages
RUN pip install --no-cache-dir -c constraints.txt .
USER loyalty
ENV DATABASE_PATH=/data/loyalty.db
VOLUME /data
# GET /healthz: every channel alive and the database taking writes (see the README).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s CMD ["loyalty-bot", "health"]
CMD ["loyalty-bot", "run"]
