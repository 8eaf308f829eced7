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
# Settings readable and the database openable; exit code 2 says which is not.
HEALTHCHECK --interval=5m --timeout=30s CMD ["loyalty-bot", "check-config"]
CMD ["loyalty-bot", "run"]
