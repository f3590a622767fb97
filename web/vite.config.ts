// Vite builds the console into dist/, which `vigie-cloud serve` serves at `/` (VIGIE_CONSOLE_DIR).
// `npm run dev` proxies /api (REST and WebSocket) to a cloud on VIGIE_DEV_API (default :8080).
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

const api = process.env.VIGIE_DEV_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  // hls.js (its light build, ~110 KB gzipped) is its own lazy chunk, loaded only for a live camera tile.
  build: { target: 'es2022', sourcemap: false, chunkSizeWarningLimit: 600 },
  server: { proxy: { '/api': { target: api, ws: true } } },
  test: { environment: 'node', include: ['src/**/*.test.ts'] },
});
