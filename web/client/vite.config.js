// Vite builds the client into dist/, which the FastAPI app serves at "/".
// JSX compiles to Preact's h() through esbuild; no framework plugin needed.
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The CSP forbids inline scripts; keep the module-preload helper in the bundle.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    rollupOptions: {
      // supabase-js is loaded only when the deployment uses Supabase Auth: its own chunk.
      output: { manualChunks: (id) => (id.includes("@supabase") ? "supabase" : undefined) },
    },
  },
  server: { proxy: { "/api": "http://127.0.0.1:8000", "/files": "http://127.0.0.1:8000" } },
});
