/**
 * An onClick for a button whose command must not run twice from one gesture: it acts on a click, and not
 * on the later clicks of a double (or triple) click. `event.detail` is the click's count in a quick run of
 * clicks at one spot (UI Events, "click" and "dblclick": detail is the current click count; 0 for a click
 * made from the keyboard or by script), so Enter, Space and a single click act, and the second click of a
 * double-click does not, even when the first click's command has already finished and the button is
 * enabled again (a Restart of a small model can finish within a double-click's interval).
 */
export function firstClickOnly(act: () => void): (event: { detail: number }) => void {
  return (event) => {
    if (event.detail > 1) return;
    act();
  };
}
