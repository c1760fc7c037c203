// Built output goes to web/dist, which `recon3d serve` finds beside the
// executable or through --web. No source maps: the server serves dist as is.
import { defineConfig } from 'vite'
export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 4096, sourcemap: false },
})
