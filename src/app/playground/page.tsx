import type { Metadata } from "next";
import { Playground } from "~/components/playground/playground";

export const metadata: Metadata = { title: "Playground" };

/** `?model=NAME` (the model page's "Try it") chooses the model. */
export default async function Page({ searchParams }: { searchParams: Promise<{ model?: string | string[] }> }) {
  const { model } = await searchParams;
  return <Playground initialModel={typeof model === "string" ? model : undefined} />;
}
