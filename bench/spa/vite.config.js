// Plain Vite + React (esbuild's automatic JSX runtime; no plugin needed for a production build).
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic" },
  build: { target: "es2022" },
});
