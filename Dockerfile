# envvault as a container image, built without any registry: the image is
# FROM scratch and holds only the static binary built on the host, a passwd
# line for the non-root user it runs as, and its data directory.
#
#   CGO_ENABLED=0 go build -trimpath -o envvault ./cmd/envvault
#   CGO_ENABLED=0 go build -trimpath -o envvault-init ./cmd/envvault-init
#   docker build -t envvault .
#   docker run -p 8080:8080 -e ENCRYPTION_KEY="$(go run ./cmd/envvault keygen)" \
#     -v envvault-data:/data envvault
#
# The SQLite store lives in /data (a volume owned by uid 10001); set
# DATABASE_URL for PostgreSQL. The binary is pure Go (modernc.org/sqlite),
# so CGO_ENABLED=0 makes it static and scratch is enough.
#
# serve runs a task worker on the Docker Engine at /var/run/docker.sock.
# Without that socket the API serves all the same and tasks fail saying the
# engine is not reachable (or set NO_WORKER=true). To run tasks, mount the
# host's socket, add its group and name the worker (see the README, Docker):
#   -v /var/run/docker.sock:/var/run/docker.sock \
#   --group-add "$(stat -c %g /var/run/docker.sock)" -e WORKER_ID=docker-host-1
FROM scratch

# COPY --chown takes numeric ids, so no stage has to run chown.
COPY scripts/docker/rootfs/etc/ /etc/
COPY --chown=10001:10001 scripts/docker/rootfs/data/ /data/
COPY --chown=10001:10001 scripts/docker/rootfs/tmp/ /tmp/
COPY envvault /envvault
# Put in task containers for env delivery stdin (read from here, handed to
# the engine through its API: nothing of the host is mounted).
COPY envvault-init /envvault-init

USER 10001:10001
WORKDIR /data
ENV DATA_DIR=/data TMPDIR=/tmp
VOLUME /data
EXPOSE 8080

ENTRYPOINT ["/envvault"]
CMD ["serve"]
