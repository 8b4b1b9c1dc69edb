# One image for every role: the api (default command) and the worker (`node dist/apps/worker/src/main.js`,
# WORKER_ROLES picks its processors).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# `npx bufferq <command>`: the admin CLI's launcher (package.json `bin`), which runs dist/ here.
COPY apps/cli/bin ./apps/cli/bin
COPY package.json ./
USER node
EXPOSE 3000
# SIGTERM reaches node directly (no shell): the apps stop accepting, finish in-flight work and flush.
CMD ["node", "dist/apps/api/src/main.js"]
