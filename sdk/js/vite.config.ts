import { defineConfig } from "vitest/config";

// The SDK as one ES module (openapi-fetch bundled in): dist/facegate.js
export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: false,
    lib: { entry: "src/index.ts", formats: ["es"], fileName: () => "facegate.js" },
    sourcemap: true,
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.ts"],
  },
});
