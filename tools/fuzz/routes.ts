/**
 * Every route the api serves: the operations of its OpenAPI document (read from the running api, so a
 * new controller is fuzzed without touching this file), the routes the document leaves out (metrics,
 * the docs themselves, Bull Board's pages and API), and nothing else: random paths are made elsewhere.
 */
import { appRoutes } from '@bull-board/api/dist/routes.js';
import type { JsonSchema } from './json-values';

export interface RouteParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: JsonSchema;
}

export interface FuzzRoute {
  method: string;
  /** OpenAPI style: `/timers/{id}`. */
  path: string;
  parameters: RouteParameter[];
  body?: JsonSchema;
  /** What lets a caller in: the API key (routes that need none ignore it), or the dashboard's basic auth. */
  access: 'api-key' | 'board';
  /** A call with valid credentials changes queues (pause, empty, obliterate ...): only sent for queues that do not exist. */
  boardMutation?: boolean;
  source: 'openapi' | 'undocumented' | 'bull-board';
}

interface OpenApiOperation {
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: JsonSchema }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
  security?: unknown[];
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

export const BOARD_PATH = '/admin/queues';

export function routesOf(document: OpenApiDocument): FuzzRoute[] {
  const routes: FuzzRoute[] = [];
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      routes.push({
        method: method.toUpperCase(),
        path,
        parameters: (operation.parameters ?? []).map((parameter) => ({
          name: parameter.name,
          in: parameter.in as RouteParameter['in'],
          required: parameter.required ?? parameter.in === 'path',
          schema: parameter.schema ?? { type: 'string' },
        })),
        body: operation.requestBody?.content?.['application/json']?.schema,
        access: 'api-key',
        source: 'openapi',
      });
    }
  }
  return [...routes, ...undocumentedRoutes(), ...boardRoutes()];
}

function undocumentedRoutes(): FuzzRoute[] {
  const get = (path: string): FuzzRoute => ({
    method: 'GET',
    path,
    parameters: [],
    access: 'api-key',
    source: 'undocumented',
  });
  return ['/metrics', '/docs', '/docs-json', '/docs-yaml', '/'].map(get);
}

/** Bull Board's routes as the installed @bull-board/api declares them, mounted under /admin/queues. */
function boardRoutes(): FuzzRoute[] {
  const toOpenApi = (route: string) => `${BOARD_PATH}${route === '/' ? '' : route.replace(/:(\w+)/g, '{$1}')}`;
  const parametersOf = (path: string): RouteParameter[] =>
    [...path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
      name,
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
  const routes: FuzzRoute[] = [];
  const entryPaths = ([] as string[]).concat(appRoutes.entryPoint.route);
  for (const route of entryPaths) {
    const path = toOpenApi(route);
    routes.push({
      method: 'GET',
      path,
      parameters: parametersOf(path),
      access: 'board',
      source: 'bull-board',
    });
  }
  for (const definition of appRoutes.api) {
    for (const route of ([] as string[]).concat(definition.route)) {
      for (const method of ([] as string[]).concat(definition.method)) {
        const path = toOpenApi(route);
        const upper = method.toUpperCase();
        routes.push({
          method: upper,
          path,
          parameters: parametersOf(path),
          body: upper === 'GET' ? undefined : {},
          access: 'board',
          boardMutation: upper !== 'GET',
          source: 'bull-board',
        });
      }
    }
  }
  return routes;
}

export function routeLabel(route: Pick<FuzzRoute, 'method' | 'path'>): string {
  return `${route.method} ${route.path}`;
}
