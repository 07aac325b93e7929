# Ferry's container image: a drop-in for quay.io/prometheus/pushgateway under the prometheus-community Helm chart
# (docs/operations.md, "Containers"). Two stages: Debian 12 builds ferry with the project's own dependency script; the
# image itself is FROM scratch and holds only what scripts/container-rootfs.sh collects (/usr/bin/ferry, its
# shared-library closure, /etc/passwd and /etc/group, an empty /proc) and /data, empty and owned by 65534, the only
# writable directory. It runs as 65534:65534 (the chart's securityContext), listens on 9091 and writes nothing but
# /data, so readOnlyRootFilesystem: true holds.
# tests/integration/test_container.py checks this file's contract (USER, EXPOSE, VOLUME, WORKDIR, ENTRYPOINT, CMD) and
# runs the same root file system read-only, as uid 65534, with the chart's arguments and probes.
#   docker build -t ferry .   &&   docker run -p 9091:9091 -v ferry-data:/data ferry

FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFY_BUILD_TESTS=OFF -DFY_BUILD_BENCH=OFF \
    && cmake --build /build --target ferry \
    && strip --strip-debug /build/ferry \
    && scripts/container-rootfs.sh /build/ferry /rootfs \
    && mkdir /data

FROM scratch
COPY --from=build /rootfs /
COPY --from=build --chown=65534:65534 /data /data
USER 65534:65534
EXPOSE 9091
VOLUME ["/data"]
WORKDIR /data
ENTRYPOINT ["/usr/bin/ferry"]
# The chart's documented extraArgs for persistence (its values.yaml); the chart's `args:` replace these when set.
CMD ["--persistence.file=/data/pushgateway.data", "--persistence.interval=5m"]
