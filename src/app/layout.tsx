import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import { AuthGate } from "~/components/auth/auth-gate";
import { LiveProvider } from "~/components/live/live-provider";
import { AppHeader } from "~/components/nav/app-header";
import { ShutdownBanner } from "~/components/live/shutdown-banner";
import { Toaster } from "~/components/ui/toaster";
import { TRPCReactProvider } from "~/trpc/client";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Synapse Engine", template: "%s · Synapse Engine" },
  description: "Run a fleet of local llama-server processes",
};

export const viewport: Viewport = { width: "device-width", initialScale: 1, themeColor: "#0e1014" };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <a href="#main" className="skip-link">
          Skip to content
        </a>
        <TRPCReactProvider>
          <LiveProvider>
            <Toaster>
              <AppHeader />
              <main id="main" tabIndex={-1}>
                <ShutdownBanner />
                <AuthGate>{children}</AuthGate>
              </main>
            </Toaster>
          </LiveProvider>
        </TRPCReactProvider>
      </body>
    </html>
  );
}
