/**
 * The inspector extension: the JSON API over members, placement, supervisor trees and entities (api.ts),
 * the runtime's dead letters (deadletters.ts), and the web page at `/` (static.ts, files from `web/`).
 * What each node answers about itself (node.ts) is installed by every runtime, so a cluster-wide answer
 * reaches members that do not serve these routes themselves.
 *
 *   const rt = createRuntime(config).use(eventFeed()).use(inspector());
 */
import type { HttpRoute } from '../http.ts';
import type { Runtime, RuntimeExtension } from '../runtime.ts';
import { inspectorApi } from './api.ts';
import { deadLetterRoutes } from './deadletters.ts';
import { DEFAULT_WEB_DIR, staticRoute } from './static.ts';

export interface InspectorOptions {
  /** Where the web page's files are (default: the repository's `web/`); `false` serves no page. */
  readonly webDir?: string | false;
}

export interface Inspector extends RuntimeExtension {
  readonly routes: readonly HttpRoute[];
}

export const inspector = (options: InspectorOptions = {}): Inspector => {
  let runtime: Runtime | undefined;
  const current = () => runtime;
  const web = options.webDir === undefined ? DEFAULT_WEB_DIR : options.webDir;
  return {
    name: 'inspector',
    routes: [inspectorApi(current), deadLetterRoutes(current), ...(web === false ? [] : [staticRoute(web)])],
    register(rt) {
      runtime = rt;
    },
    async start(rt) {
      runtime = rt;
    },
    async stop() {},
  };
};
