import type { Metadata } from "next";
import { DiscoverPage } from "~/components/discover/discover-page";

export const metadata: Metadata = { title: "Discover & import" };

export default function Page() {
  return <DiscoverPage />;
}
