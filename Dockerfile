# Image for duebot's own processes (action server, web service). Rasa runs from the rasa/rasa image.
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .
USER nobody
