import type { Metadata } from "next";
import { HostsPage } from "~/components/hosts/hosts-page";

export const metadata: Metadata = { title: "Hosts" };

export default function Page() {
  return <HostsPage />;
}
