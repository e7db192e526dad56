import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a,b,c,d}from"./chunk-4D5VOL6B.js";import"./chunk-5VGSSBNX.js";import"./chunk-WO47TEWM.js";import"./chunk-LF5X2VPB.js";import"./chunk-UZMZCFOP.js";export{a as KubeApiError,d as KubeClient,c as kubeconfigSecrets,b as loadKubeConfig};
