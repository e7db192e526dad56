import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a,b,c,d}from"./chunk-JLS33EP4.js";import"./chunk-XXPF6MVB.js";import"./chunk-WO47TEWM.js";import"./chunk-66G7R2PH.js";import"./chunk-JUNKEJ2C.js";import"./chunk-UZMZCFOP.js";export{a as KubeApiError,d as KubeClient,c as kubeconfigSecrets,b as loadKubeConfig};
