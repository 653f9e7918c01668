# Prometheus of the container deployment: Debian's package on the bootstrapped Debian base (apt from Debian's
# mirror during the build: `docker build --network host`; no image registry).
ARG BASE_IMAGE=limr-base:bookworm
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 limr && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin limr
USER 10001:10001
# The config is mounted at /etc/limr/prometheus.yml and the TSDB on a scratch volume at /prometheus.
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/limr/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090"]
