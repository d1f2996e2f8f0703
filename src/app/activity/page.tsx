import type { Metadata } from "next";
import { ActivityPage } from "~/components/activity/activity-page";
import { isActivityKind } from "~/components/activity/activity-item";

export const metadata: Metadata = { title: "Activity" };

/** `?model=ID` (the model page's "Activity of this model") and `?kind=state|action|error|host` choose the filters. */
export default async function Page({ searchParams }: { searchParams: Promise<{ model?: string | string[]; kind?: string | string[] }> }) {
  const { model, kind } = await searchParams;
  return <ActivityPage initialModelId={typeof model === "string" && model ? model : undefined} initialKind={isActivityKind(kind) ? kind : undefined} />;
}
