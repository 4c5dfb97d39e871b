import type { NextConfig } from "next";

// A static export: the Python server serves `out/` from the API's own port (src/nexent/webui.py). There is no
// Next.js server, so pages with ids read them from query parameters (`/agents/edit?id=...`).
const config: NextConfig = {
  output: "export",
  images: { unoptimized: true },
  reactStrictMode: true,
  poweredByHeader: false,
  // The build checks types itself (`npm run typecheck` in scripts/web) and has no ESLint step.
  typescript: { ignoreBuildErrors: true },
  experimental: { optimizePackageImports: ["antd", "@ant-design/x", "@ant-design/icons"] },
};

export default config;
