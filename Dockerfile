# syntax=docker/dockerfile:1
#
# The bundlegate image:   docker build -t bundlegate .
#                         docker run --read-only --tmpfs /tmp -v "$PWD:/etc/bundlegate:ro" \
#                           -v bundlegate-state:/var/lib/bundlegate \
#                           -e BUNDLEGATE_STORE__SNAPSHOT_FILE=/var/lib/bundlegate/bundlegate-snapshot.json bundlegate
#                         (run from the folder with bundlegate.yaml and the files it names; see README, Deployment)
#
# Node.js 26 is the Active LTS line since 2026-10-28 (24 moved to maintenance on 2026-10-20). Debian 13
# (trixie) is the current Debian stable. Both stages use the same base, so what is built is what runs.

FROM node:26-trixie-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/copy-assets.mjs scripts/
COPY src/ src/
RUN npm run build

FROM node:26-trixie-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Production dependencies only; none of them has an install script.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist/ dist/
# A fixed numeric user, so Kubernetes' runAsNonRoot can check it. Nothing under /app is writable by it:
# the process writes only to /tmp and, with the embedded store's snapshot file, to /var/lib/bundlegate.
RUN groupadd --system --gid 10001 bundlegate \
  && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin bundlegate \
  && mkdir -p /etc/bundlegate /var/lib/bundlegate/pki \
  && chown -R 10001:10001 /var/lib/bundlegate
USER 10001:10001
# https_web, https_spiffe, relay, internal API (health, admin, distribution), metrics.
EXPOSE 8443 8444 8446 8080 9464
# The internal listener's default address; set HEALTHCHECK_URL if the config moves it (https needs more).
ENV HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.HEALTHCHECK_URL, { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--config", "/etc/bundlegate/bundlegate.yaml"]
