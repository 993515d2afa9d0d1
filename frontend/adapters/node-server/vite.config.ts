/**
 * Server (SSR) build for the Node adapter: writes server/entry.node-server.js, which serves the
 * client build in dist/ and renders pages. Run after the client build (`npm run build`).
 */
import { nodeServerAdapter } from "@builder.io/qwik-city/adapters/node-server/vite";
import { extendConfig } from "@builder.io/qwik-city/vite";
import baseConfig from "../../vite.config";

export default extendConfig(baseConfig, () => {
  return {
    build: {
      ssr: true,
      rollupOptions: {
        input: ["src/entry.node-server.tsx", "@qwik-city-plan"],
      },
    },
    // No `ssg.include`: nothing is pre-rendered at build time; every page is rendered per request,
    // so the BFF is only ever called at request time.
    plugins: [nodeServerAdapter({ name: "node-server" })],
  };
});
