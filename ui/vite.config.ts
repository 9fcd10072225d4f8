/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The console is served by the AAM backend on its own origin (http://127.0.0.1:8002/), so the
// build uses absolute /assets/ URLs and talks to /api on the same host. `npm run dev` proxies /api
// to a backend on 8002 for development.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    chunkSizeWarningLimit: 2500,
    sourcemap: false,
  },
  css: {
    preprocessorOptions: {
      scss: { quietDeps: true, silenceDeprecations: ['mixed-decls', 'import', 'global-builtin'] },
    },
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8002', '/runs': 'http://127.0.0.1:8002' },
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.test.{ts,tsx}'],
    css: false,
  },
});
