# Dockerfile: tcpkit built from source on Debian 12 and run as a non-root
# user; the image docs/deploy.md runs in a container and as a Kubernetes Job.
#
#   docker build -t tcpkit .
#   docker run --rm -p 7007:7007 tcpkit serve echo -H 0.0.0.0 -p 7007

# --- build: the project's own scripts/deps and make, as CI runs them -------
FROM debian:bookworm-slim AS build
SHELL ["/bin/sh", "-eu", "-c"]
WORKDIR /src
# The one list of build packages (installed with --no-install-recommends);
# copied alone first so that the layer survives source changes.
COPY scripts/deps scripts/deps
RUN ./scripts/deps build && rm -rf /var/lib/apt/lists/*
COPY . .
# A release build (RelWithDebInfo, warnings as errors), installed into a
# staging prefix; the program links libtcpkit statically: one file to copy.
RUN make build BUILD=build-image WERROR=ON DEPS=skip \
	&& make install BUILD=build-image PREFIX=/usr/local DESTDIR=/stage \
		DEPS=skip \
	&& /stage/usr/local/bin/tcpkit version

# --- run: the program, OpenSSL and the CA bundle, nothing else -------------
FROM debian:bookworm-slim
SHELL ["/bin/sh", "-eu", "-c"]
# libssl3: TLS; ca-certificates: verified TLS to public names (--tls,
# get https://).  zlib and libc are in the base image already.
RUN apt-get update \
	&& apt-get install -y --no-install-recommends libssl3 ca-certificates \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /stage/usr/local/bin/tcpkit /usr/local/bin/tcpkit
# A fixed numeric UID (Kubernetes' runAsNonRoot checks the number) with no
# shell and no home of value.  Ports below 1024 need root or
# CAP_NET_BIND_SERVICE: serve on 7007 and publish it as 7 or 80 instead.
RUN useradd --system --uid 10001 --user-group --no-create-home \
	--shell /usr/sbin/nologin tcpkit
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["tcpkit"]
CMD ["help"]
