"use client";

import { Spin } from "antd";
import { useRouter } from "next/navigation";
import { useEffect } from "react";
import { getSession } from "@/api/session";

/** The start page: chat when signed in, else sign-in. */
export default function Home() {
  const router = useRouter();
  useEffect(() => {
    router.replace(getSession() ? "/chat" : "/signin");
  }, [router]);
  return <Spin style={{ display: "block", margin: "20vh auto" }} />;
}
