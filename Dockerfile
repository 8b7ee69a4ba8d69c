# syntax=docker/dockerfile:1
# The cstor-snapshots image: every component is `cstor <subcommand>` (ENTRYPOINT node bin/cstor.js),
# so the deploy/ manifests set only `args`. Multi-stage: the build stage installs every
# dependency and, when the project has a tsconfig.build.json, compiles to dist/; the prod-deps
# stage installs runtime dependencies only (plus tsx, which bin/cstor.js uses to load the
# TypeScript sources); the runtime stage copies the sources and those modules, nothing else, and
# runs as the non-root `node` user (uid 1000, the uid the manifests use).
#   docker build -t cstor-snapshots:0.1.0 .

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Typecheck-and-compile when a build config exists; otherwise the sources ship as TypeScript and
# run through tsx. dist/ always exists so the runtime stage can copy it.
RUN if [ -f tsconfig.build.json ]; then npm run build; fi && mkdir -p dist

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && TSX_VERSION="$(node -p "require('./package-lock.json').packages['node_modules/tsx'].version")" \
 && npm install --no-save --omit=dev --no-audit --no-fund "tsx@${TSX_VERSION}" \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/package.json ./
COPY --from=build --chown=root:root /src/dist ./dist
COPY --from=build --chown=root:root /src/bin ./bin
COPY --from=build --chown=root:root /src/lib ./lib
COPY --from=build --chown=root:root /src/kube-lite ./kube-lite
COPY --from=build --chown=root:root /src/cstor-pool ./cstor-pool
COPY --from=build --chown=root:root /src/cstor-target ./cstor-target
COPY --from=build --chown=root:root /src/maya-apiserver ./maya-apiserver
COPY --from=build --chown=root:root /src/snapshot-controller ./snapshot-controller
COPY --from=build --chown=root:root /src/snapshot-provisioner ./snapshot-provisioner
COPY --from=build --chown=root:root /src/volume-provisioner ./volume-provisioner
COPY --from=build --chown=root:root /src/deploy ./deploy
# The code is owned by root and read-only to the runtime user; state goes to mounted volumes.
USER node
EXPOSE 5656 3260 9500 3232 9501
ENTRYPOINT ["node", "bin/cstor.js"]
CMD ["--help"]
