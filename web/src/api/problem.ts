/** An RFC 9457 problem document from the API, raised as an error so every caller shows its `detail`. */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code?: string;
  request_id?: string;
  errors?: { loc?: (string | number)[]; msg?: string; type?: string }[];
  [extra: string]: unknown;
}

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.name = "ApiError";
  }

  get status(): number {
    return this.problem.status;
  }

  get code(): string | undefined {
    return this.problem.code;
  }
}

/** The problem document of a failed response (or one made from its status when the body is not one). */
export async function problemOf(response: Response): Promise<Problem> {
  try {
    const body = (await response.clone().json()) as Partial<Problem>;
    if (body && typeof body === "object") return { ...body, status: body.status ?? response.status };
  } catch {
    // Not JSON: a proxy's error page, say.
  }
  return { status: response.status, title: response.statusText };
}

/** A network failure (no response at all) as a problem with status 0. */
export const NETWORK_PROBLEM: Problem = { status: 0, code: "network_error" };

/** The first field error of a validation problem, as "field: message". */
export function fieldErrors(problem: Problem): string[] {
  return (problem.errors ?? []).map((error) => {
    const field = (error.loc ?? []).filter((part) => part !== "body").join(".");
    return field ? `${field}: ${error.msg ?? ""}` : (error.msg ?? "");
  });
}
