/**
 * Base Vite config (client build and `npm run dev`). The server build extends it in
 * adapters/node-server/vite.config.ts.
 */
import { defineConfig, type UserConfig } from "vite";
import { qwikVite } from "@builder.io/qwik/optimizer";
import { qwikCity } from "@builder.io/qwik-city/vite";

export default defineConfig((): UserConfig => {
  return {
    plugins: [qwikCity(), qwikVite()],
    server: {
      headers: {
        // the dev server must never cache pages
        "Cache-Control": "no-store",
      },
    },
  };
});
