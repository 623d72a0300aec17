import { defineConfig } from "vite";

// The demo checkout page, served by the local cloud at /demo/ (tools/localcloud/demo.py): dist/demo
export default defineConfig({
  root: "demo",
  base: "/demo/",
  build: { outDir: "../dist/demo", emptyOutDir: true },
});
